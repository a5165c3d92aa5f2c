//! Queues of one process on one database share their wake-ups and
//! hand-overs: an enqueue through one queue wakes, or hands its task to,
//! an idle worker of another queue on the same SQLite file or PostgreSQL
//! schema at once, as it would a worker of its own, instead of leaving it
//! to the other process's path (the file watch, `LISTEN`) or the poll.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use crate::handoff::HandOffs;
use crate::wakeup::Wakeups;

/// What the queues on one database share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) wakeups: Arc<Wakeups>,
    pub(crate) hand_offs: HandOffs,
}

/// The shared parts of the queues open in this process, by the
/// [location](crate::backend::Backend::location) of their database.
static OPEN: LazyLock<Mutex<HashMap<String, Weak<Shared>>>> = LazyLock::new(Mutex::default);

/// The shared parts of the queues on the database at `location`: those of
/// a queue still open there, or new ones. A queue of a backend without a
/// location shares nothing.
pub(crate) fn shared(location: Option<String>) -> Arc<Shared> {
    let Some(location) = location else {
        return Arc::default();
    };
    let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(shared) = open.get(&location).and_then(Weak::upgrade) {
        return shared;
    }
    open.retain(|_, shared| shared.strong_count() > 0);
    let shared = Arc::<Shared>::default();
    open.insert(location, Arc::downgrade(&shared));
    shared
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_location_shares_and_others_do_not() {
        let a = shared(Some("sqlite /tmp/a.db".into()));
        let again = shared(Some("sqlite /tmp/a.db".into()));
        let b = shared(Some("sqlite /tmp/b.db".into()));
        assert!(Arc::ptr_eq(&a, &again));
        assert!(!Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&shared(None), &shared(None)));
        drop((a, again));
        let fresh = shared(Some("sqlite /tmp/a.db".into()));
        assert_eq!(Arc::strong_count(&fresh), 1, "a new one once all are gone");
    }
}
