//! `WarmInstances`: the instances one worker thread keeps between batches, one per module. An
//! instance whose call failed is dropped and the next call gets a fresh one.

use std::collections::HashMap;
use std::sync::Arc;

use super::{CallLimits, LoadedModule, Runtime, UdfError, UdfInstance};

/// One worker's warm instances, one per loaded module (by identity: errors name the module's
/// own `name@version`) and limits.
///
/// The address of a `LoadedModule` is a stable key: the instance holds an `Arc` to its module,
/// so the module cannot be freed and its address reused while the entry exists.
#[derive(Default)]
pub struct WarmInstances {
    instances: HashMap<(usize, CallLimits), UdfInstance>,
}

impl WarmInstances {
    /// No instances yet.
    pub fn new() -> WarmInstances {
        WarmInstances::default()
    }

    /// Runs `call` on this worker's instance of `module` (made on first use, or after the last
    /// call failed), then drops the instance if the call poisoned it.
    pub fn with<T>(
        &mut self,
        runtime: &Runtime,
        module: &Arc<LoadedModule>,
        limits: &CallLimits,
        call: impl FnOnce(&mut UdfInstance) -> Result<T, UdfError>,
    ) -> Result<T, UdfError> {
        let key = (Arc::as_ptr(module) as usize, limits.clone());
        let inst = match self.instances.entry(key.clone()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => v.insert(runtime.instantiate(module, limits)?),
        };
        let result = call(inst);
        if inst.is_poisoned() {
            self.instances.remove(&key);
        }
        result
    }

    /// How many instances are warm.
    pub fn len(&self) -> usize {
        self.instances.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }
}
