//! Scenario files: the model and its strict parser.

pub mod configs;
pub mod model;
pub mod parse;

pub use model::*;
pub use parse::{parse_file, parse_str, ScenarioError};
