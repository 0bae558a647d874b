// The login form, shown when the API answers 401 (the server listens beyond loopback).
import { api } from '../api.js';
import { h } from '../dom.js';

export function loginPage(root, done) {
  const error = h('p', { class: 'form-error', role: 'alert' });
  const user = h('input', { name: 'user', autocomplete: 'username', required: true, autofocus: true });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const button = h('button', { type: 'submit', class: 'primary' }, 'Log in');
  const form = h('form', { class: 'card login-card', onsubmit: async (ev) => {
    ev.preventDefault();
    button.disabled = true;
    error.textContent = '';
    try {
      await api.login(user.value, password.value);
      sessionStorage.setItem('cg-user', user.value);
      done();
    } catch (e) {
      error.textContent = e.status === 401 ? 'Wrong user name or password.' : e.message;
      button.disabled = false;
    }
  } },
  h('div', { class: 'brand login-brand' }, h('span', { class: 'brand-mark' }), 'cellguard'),
  h('label', {}, 'User', user), h('label', {}, 'Password', password), button, error);
  root.append(form);
  return { destroy() {} };
}
