//! What this build of the cluster can run. A scenario that asks for more (the delay fault) is
//! refused before the run with the line that asks for it, rather than run as something it is
//! not.

use crate::scenario::{Action, Scenario, ScenarioError};

fn refuse(file: &str, line: Option<usize>, message: String) -> ScenarioError {
    ScenarioError {
        file: file.to_string(),
        line,
        message,
    }
}

pub fn check_supported(file: &str, scenario: &Scenario) -> Result<(), ScenarioError> {
    for fault in &scenario.faults {
        let line = Some(fault.line);
        if fault.action == Action::Delay {
            return Err(refuse(
                file,
                line,
                "the delay fault is not built yet".into(),
            ));
        }
    }
    Ok(())
}
