//! `WarmInstances`: the instances one worker thread keeps between batches for one pipeline, one
//! per module content and limits. An instance whose call failed is dropped and the next call
//! gets a fresh one; a hot-swap drops the instances of the module it swapped out. Each instance
//! holds a lease on its tenant's `InstanceBudget`, given back when it is dropped.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{CallLimits, LoadedModule, Runtime, UdfError, UdfInstance};

/// How many instances may exist at once. A tenant has one (quota `instances_max`); each of its
/// runs reserves from it, when it starts, what its workers may hold, so a run that started can
/// never be refused an instance because of another run.
#[derive(Debug)]
pub struct InstanceBudget {
    used: AtomicUsize,
    max: usize,
    /// A reservation: given back to this budget when dropped.
    parent: Option<Arc<InstanceBudget>>,
}

impl InstanceBudget {
    /// A budget of `max` instances.
    pub fn new(max: usize) -> Arc<InstanceBudget> {
        Arc::new(InstanceBudget {
            used: AtomicUsize::new(0),
            max,
            parent: None,
        })
    }

    /// Takes `n` instances of this budget as a budget of their own (a run's), given back when
    /// it is dropped; `None` if fewer than `n` are left.
    pub fn reserve(self: &Arc<Self>, n: usize) -> Option<Arc<InstanceBudget>> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                u.checked_add(n).filter(|t| *t <= self.max)
            })
            .ok()?;
        Some(Arc::new(InstanceBudget {
            used: AtomicUsize::new(0),
            max: n,
            parent: Some(self.clone()),
        }))
    }

    /// No limit (local runs, tests).
    pub fn unlimited() -> Arc<InstanceBudget> {
        InstanceBudget::new(usize::MAX)
    }

    /// Instances held now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The most it allows.
    pub fn max(&self) -> usize {
        self.max
    }

    fn lease(self: &Arc<Self>) -> Option<Lease> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < self.max).then_some(n + 1))
            .ok()
            .map(|_| Lease(self.clone()))
    }
}

impl Drop for InstanceBudget {
    fn drop(&mut self) {
        if let Some(parent) = &self.parent {
            parent.used.fetch_sub(self.max, Ordering::AcqRel);
        }
    }
}

/// One instance's share of a budget, given back on drop.
#[derive(Debug)]
struct Lease(Arc<InstanceBudget>);

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.used.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One worker's warm instances of one pipeline, by module content (SHA-256) and limits.
#[derive(Default)]
pub struct WarmInstances {
    instances: HashMap<([u8; 32], CallLimits), (UdfInstance, Option<Lease>)>,
}

impl WarmInstances {
    /// No instances yet.
    pub fn new() -> WarmInstances {
        WarmInstances::default()
    }

    /// Runs `call` on this worker's instance of `module` (made on first use, or after the last
    /// call failed, leased from `budget`), then drops the instance if the call poisoned it.
    pub fn with<T>(
        &mut self,
        runtime: &Runtime,
        module: &Arc<LoadedModule>,
        limits: &CallLimits,
        budget: &Arc<InstanceBudget>,
        call: impl FnOnce(&mut UdfInstance) -> Result<T, UdfError>,
    ) -> Result<T, UdfError> {
        let key = (*module.sha256(), limits.clone());
        let (inst, _) = match self.instances.entry(key.clone()) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                let lease = if budget.max() == usize::MAX {
                    None
                } else {
                    Some(budget.lease().ok_or_else(|| UdfError::Capacity {
                        module: module.label().to_owned(),
                        detail: format!(
                            "the tenant's jobs hold {} warm instances, the quota instances_max is {} (stop a job, or ask for a larger quota)",
                            budget.used(),
                            budget.max()
                        ),
                    })?)
                };
                v.insert((runtime.instantiate(module, limits)?, lease))
            }
        };
        if inst.module().label() != module.label() {
            inst.relabel(module);
        }
        let result = call(inst);
        if inst.is_poisoned() {
            self.instances.remove(&key);
        }
        result
    }

    /// Drops the instances of the module with this content (a hot-swap replaced it).
    pub fn forget_module(&mut self, sha256: &[u8; 32]) {
        self.instances.retain(|(hash, _), _| hash != sha256);
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

#[cfg(test)]
mod tests {
    use super::InstanceBudget;

    #[test]
    fn a_reservation_counts_against_its_parent_until_dropped() {
        let tenant = InstanceBudget::new(5);
        let run = tenant.reserve(3).unwrap();
        assert!(tenant.reserve(3).is_none(), "only 2 left");
        let leases: Vec<_> = (0..3).map(|_| run.lease().unwrap()).collect();
        assert!(run.lease().is_none(), "a run holds at most what it reserved");
        drop(leases);
        drop(run);
        assert_eq!(tenant.used(), 0);
        assert!(tenant.reserve(5).is_some());
    }

    #[test]
    fn a_budget_leases_up_to_its_max_and_takes_leases_back() {
        let b = InstanceBudget::new(2);
        let one = b.lease().unwrap();
        let two = b.lease().unwrap();
        assert!(b.lease().is_none());
        drop(one);
        assert_eq!(b.used(), 1);
        assert!(b.lease().is_some());
        drop(two);
    }
}
