//! The blocking facade's lease: a claimed task, completed or failed from
//! synchronous code.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;

use super::{block_on, BlockingRuntime};
use crate::error::Result;
use crate::lease::FailOutcome;
use crate::names::TaskId;
use crate::task::{LeaseRef, NewTask, Task};
use crate::unique::Enqueued;

/// A [`crate::Lease`] for synchronous code.
#[derive(Debug)]
#[must_use = "a lease that is not completed, failed or released runs again after it expires"]
pub struct Lease {
    pub(super) lease: crate::Lease,
    pub(super) runtime: Arc<BlockingRuntime>,
}

impl Lease {
    /// The async lease underneath, for the transactional calls of a
    /// backend.
    pub fn as_async(&self) -> &crate::Lease {
        &self.lease
    }

    /// The task, as claimed.
    pub fn task(&self) -> &Task {
        self.lease.task()
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.lease.id()
    }

    /// The fencing token of this claim.
    pub fn token(&self) -> i64 {
        self.lease.token()
    }

    /// The id and token.
    pub fn lease_ref(&self) -> LeaseRef {
        self.lease.lease_ref()
    }

    /// When the lease ends unless extended.
    pub fn expires(&self) -> SystemTime {
        self.lease.expires()
    }

    /// The raw payload bytes.
    pub fn payload(&self) -> &[u8] {
        self.lease.payload()
    }

    /// The payload decoded from JSON into `T`.
    pub fn payload_json<T: DeserializeOwned>(&self) -> Result<T> {
        self.lease.payload_json()
    }

    /// See [`crate::Lease::complete`].
    pub fn complete(self) -> Result<()> {
        block_on(&self.runtime, self.lease.complete())?
    }

    /// See [`crate::Lease::complete_with`].
    pub fn complete_with(self, follow_ups: Vec<NewTask>) -> Result<Vec<Enqueued>> {
        block_on(&self.runtime, self.lease.complete_with(follow_ups))?
    }

    /// See [`crate::Lease::complete_with_result`].
    pub fn complete_with_result(
        self,
        result: crate::TaskResult,
        follow_ups: Vec<NewTask>,
    ) -> Result<Vec<Enqueued>> {
        block_on(
            &self.runtime,
            self.lease.complete_with_result(result, follow_ups),
        )?
    }

    /// See [`crate::Lease::fail`].
    pub fn fail(self, reason: impl std::fmt::Display) -> Result<FailOutcome> {
        block_on(&self.runtime, self.lease.fail(reason))?
    }

    /// See [`crate::Lease::fail_permanently`].
    pub fn fail_permanently(self, reason: impl std::fmt::Display) -> Result<()> {
        block_on(&self.runtime, self.lease.fail_permanently(reason))?
    }

    /// See [`crate::Lease::cancel`].
    pub fn cancel(self, reason: impl std::fmt::Display) -> Result<()> {
        block_on(&self.runtime, self.lease.cancel(reason))?
    }

    /// See [`crate::Lease::extend`].
    pub fn extend(&mut self, by: Duration) -> Result<SystemTime> {
        let runtime = Arc::clone(&self.runtime);
        block_on(&runtime, self.lease.extend(by))?
    }

    /// See [`crate::Lease::release`].
    pub fn release(self) -> Result<()> {
        block_on(&self.runtime, self.lease.release())?
    }

    /// See [`crate::Lease::snooze`].
    pub fn snooze(self, delay: Duration) -> Result<()> {
        block_on(&self.runtime, self.lease.snooze(delay))?
    }
}
