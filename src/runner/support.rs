//! What this build of the cluster can run. A scenario that asks for more (a KRaft quorum,
//! consumer groups, transactions) is refused before the run with the line that asks for it,
//! rather than run as something it is not.

use crate::scenario::{Action, ClientKind, Figure, Scenario, ScenarioError, Target, Trigger};

fn refuse(file: &str, line: Option<usize>, message: String) -> ScenarioError {
    ScenarioError {
        file: file.to_string(),
        line,
        message,
    }
}

pub fn check_supported(file: &str, scenario: &Scenario) -> Result<(), ScenarioError> {
    for client in &scenario.clients {
        let line = Some(client.line);
        match client.kind {
            ClientKind::Transactional | ClientKind::Pipeline => {
                return Err(refuse(file, line, format!("client {}: {:?} clients are not built yet", client.id, client.kind)))
            }
            ClientKind::Consumer if client.group.is_some() => {
                return Err(refuse(file, line, format!("client {}: consumer groups are not built yet; omit `group` to assign every partition", client.id)))
            }
            _ => {}
        }
    }
    for fault in &scenario.faults {
        let line = Some(fault.line);
        if fault.action == Action::Delay {
            return Err(refuse(
                file,
                line,
                "the delay fault is not built yet".into(),
            ));
        }

        if let Trigger::When(condition) = &fault.trigger {
            if let Figure::Committed(..) = condition.figure {
                return Err(refuse(
                    file,
                    line,
                    "committed(…) needs consumer groups, which are not built yet".into(),
                ));
            }
        }
        let mut targets: Vec<&Target> = fault
            .target
            .iter()
            .chain(fault.from.iter())
            .chain(fault.to.iter())
            .collect();
        targets.extend(fault.groups.iter().flatten());
        for target in targets {
            if let Target::Coordinator(group) = target {
                return Err(refuse(
                    file,
                    line,
                    format!("target coordinator({group}) needs consumer groups, which are not built yet"),
                ));
            }
        }
    }
    Ok(())
}
