// The live-stream indicator in the top bar.
export function setConnection(connected, text) {
  const el = document.getElementById('conn');
  if (!el) return;
  el.textContent = text ?? (connected ? 'live' : 'reconnecting…');
  el.className = `conn ${connected ? 'up' : 'down'}`;
}
