// A non-owning reference to a callable: what std::function would be if it
// never allocated. The callable must outlive the call it is passed to, which
// holds for parallel regions (the caller waits for them to finish).
#pragma once

#include <type_traits>
#include <utility>

namespace osprey {

template <typename Signature>
class FunctionRef;

template <typename R, typename... Args>
class FunctionRef<R(Args...)> {
 public:
  template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, FunctionRef>>>
  FunctionRef(F&& f)  // NOLINT: implicit like std::function
      : object_(const_cast<void*>(static_cast<const void*>(&f))),
        invoke_([](void* o, Args... args) -> R { return (*static_cast<std::remove_reference_t<F>*>(o))(std::forward<Args>(args)...); }) {}

  R operator()(Args... args) const { return invoke_(object_, std::forward<Args>(args)...); }

 private:
  void* object_;
  R (*invoke_)(void*, Args...);
};

}  // namespace osprey
