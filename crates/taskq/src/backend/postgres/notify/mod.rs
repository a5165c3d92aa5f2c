//! Wake-ups across processes: the `LISTEN` connection that hears other
//! processes' enqueues ([`listener`]), and the sender of this process's
//! notifications ([`notifier`]).

pub(super) mod listener;
pub(super) mod notifier;
