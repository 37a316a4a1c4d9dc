//! Everything the simulator knows: provider state, the call log, faults and digest nonces. The
//! provider modules read and change it; the server hands it to them.

use std::sync::Mutex;

use crate::calls::CallLog;
use crate::digest::NonceStore;
use crate::faults::FaultSet;
use crate::state::State;
use crate::util::lock;

/// Everything the simulator knows.
pub struct Sim {
    pub state: Mutex<State>,
    /// What `POST /_sim/reset` restores.
    pub initial: State,
    pub calls: Mutex<CallLog>,
    pub faults: Mutex<FaultSet>,
    pub nonces: Mutex<NonceStore>,
}

impl Sim {
    pub fn new(initial: State) -> Sim {
        Sim {
            state: Mutex::new(initial.clone()),
            initial,
            calls: Mutex::new(CallLog::default()),
            faults: Mutex::new(FaultSet::default()),
            nonces: Mutex::new(NonceStore::default()),
        }
    }

    /// Back to the start state; calls, faults and nonces cleared.
    pub fn reset(&self) {
        *lock(&self.state) = self.initial.clone();
        lock(&self.calls).clear();
        lock(&self.faults).clear();
        lock(&self.nonces).clear();
    }
}
