//! Choosing the real server for a new flow: the service's scheduler, after
//! persistence.

use crate::classify::PacketInfo;
use crate::conn::Time;
use crate::stats::DropReason;

use super::Worker;

impl Worker {
    /// The index of the real server of `service` a new flow goes to.
    pub(super) fn schedule(
        &mut self,
        service: usize,
        info: &PacketInfo,
        _now: Time,
    ) -> Result<usize, DropReason> {
        let svc = self.config.service(service).ok_or(DropReason::NoService)?;
        let state = self
            .services
            .get_mut(service)
            .ok_or(DropReason::NoService)?;
        svc.scheduler
            .pick(&mut state.sched, &info.key, None, &state.facts)
            .ok_or(DropReason::NoRealServer)
    }
}
