//! Jobs as declared: the spec (`spec.rs`), its checks (`validate.rs`) and the checked plan that
//! becomes a pipeline (`plan.rs`). The reference for users is `docs/job-spec.md`.

pub mod plan;
pub mod spec;
pub mod validate;

pub use plan::JobPlan;
pub use spec::JobSpec;
pub use validate::{
    ModuleResolver, ParseFailure, SpecError, SpecErrors, check, check_text, parse, parse_yaml, read_and_check,
};
