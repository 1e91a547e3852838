//! kpidb's SQL functions, one file each; `register_all` is the one place they are
//! added to a session and `documentation` the one place `\df` and the docs read.

use datafusion::logical_expr::Documentation;
use datafusion::prelude::SessionContext;

/// Registers every kpidb function on `ctx`.
pub fn register_all(_ctx: &SessionContext) {}

/// (name, documentation) of every kpidb function, sorted by name.
pub fn documentation() -> Vec<(String, Documentation)> {
    Vec::new()
}
