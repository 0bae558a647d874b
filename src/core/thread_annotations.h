// Lock annotations checked by clang's -Wthread-safety (the clang builds and `make lint`), and the
// annotated mutex every subsystem uses instead of a bare std::mutex.
//
//   Mutex mutex_;
//   int count_ GUARDED_BY(mutex_) = 0;
//   void bump() { MutexLock lock(mutex_); ++count_; }   // reading count_ unlocked: a compile error
//   void drain() REQUIRES(mutex_);                             // callers must hold mutex_
//
// Condition waits are written as explicit loops (`while (!ready_) cv_.wait(lock);`), so the analysis
// sees the lock held where the guarded state is read; a predicate lambda would be analysed as a
// function of its own that holds nothing.
//
// Under GCC the macros are empty: the annotations cost nothing and change no code.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define CELLGUARD_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define CELLGUARD_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) CELLGUARD_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY CELLGUARD_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) CELLGUARD_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) CELLGUARD_THREAD_ANNOTATION(pt_guarded_by(x))
#define ACQUIRED_BEFORE(...) CELLGUARD_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
#define ACQUIRED_AFTER(...) CELLGUARD_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
#define REQUIRES(...) CELLGUARD_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define ACQUIRE(...) CELLGUARD_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) CELLGUARD_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) CELLGUARD_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define EXCLUDES(...) CELLGUARD_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ASSERT_CAPABILITY(x) CELLGUARD_THREAD_ANNOTATION(assert_capability(x))
#define RETURN_CAPABILITY(x) CELLGUARD_THREAD_ANNOTATION(lock_returned(x))
#define NO_THREAD_SAFETY_ANALYSIS CELLGUARD_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace cellguard {

// std::mutex with the capability attribute, so members can be GUARDED_BY it.
class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() ACQUIRE() { mutex_.lock(); }
  void unlock() RELEASE() { mutex_.unlock(); }
  bool try_lock() TRY_ACQUIRE(true) { return mutex_.try_lock(); }

 private:
  friend class CondVar;
  std::mutex mutex_;
};

// Holds a Mutex for its scope (std::lock_guard); unlock()/lock() release and retake it inside the
// scope (work outside the lock), and CondVar waits on it.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mutex) ACQUIRE(mutex) : mutex_(mutex) { mutex_.lock(); }
  ~MutexLock() RELEASE() {
    if (held_) mutex_.unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void unlock() RELEASE() {
    mutex_.unlock();
    held_ = false;
  }
  void lock() ACQUIRE() {
    mutex_.lock();
    held_ = true;
  }

 private:
  friend class CondVar;
  Mutex& mutex_;
  bool held_ = true;
};

// std::condition_variable over a MutexLock. Waits may wake spuriously: call them in a loop that
// checks the condition (see the top of this file).
class CondVar {
 public:
  void notify_one() noexcept { cv_.notify_one(); }
  void notify_all() noexcept { cv_.notify_all(); }

  void wait(MutexLock& lock) {
    std::unique_lock<std::mutex> native(lock.mutex_.mutex_, std::adopt_lock);
    cv_.wait(native);
    native.release();  // the MutexLock still owns it
  }
  template <class Clock, class Duration>
  std::cv_status wait_until(MutexLock& lock, const std::chrono::time_point<Clock, Duration>& until) {
    std::unique_lock<std::mutex> native(lock.mutex_.mutex_, std::adopt_lock);
    const auto status = cv_.wait_until(native, until);
    native.release();
    return status;
  }
  template <class Rep, class Period>
  std::cv_status wait_for(MutexLock& lock, const std::chrono::duration<Rep, Period>& timeout) {
    return wait_until(lock, std::chrono::steady_clock::now() + timeout);
  }

 private:
  std::condition_variable cv_;
};

}  // namespace cellguard
