//! Tests of the controller's metadata layer: byte fixtures and round trips of the records,
//! replay, placement and election. All pure; they run in the default (madsim) build and the
//! real one alike.

mod election_tests;
mod elr_tests;
mod image_tests;
mod image_writer_tests;
mod placement_tests;
mod quorum_broker_tests;
mod quorum_partition_tests;
mod quorum_properties;
mod quorum_support;
mod quorum_topic_tests;
mod record_fixtures;
mod record_properties;
