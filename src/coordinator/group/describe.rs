//! DescribeGroups and ListGroups (`GroupMetadataManager.describeGroups`, `listGroups`).

use super::classic_group::ClassicGroupState;
use super::coordinator::GroupCoordinator;
use super::{error_code, DescribedGroup, DescribedGroupMember, ListGroupsRequest, ListedGroup};

impl GroupCoordinator {
    /// Each group in the order asked; an unknown one is described as Dead (before v6's
    /// GROUP_ID_NOT_FOUND). Subscriptions, assignments and the protocol are shown only for a
    /// Stable group (`ClassicGroup.summary`).
    pub(super) fn describe_groups(&self, group_ids: &[String]) -> Vec<DescribedGroup> {
        group_ids.iter().map(|id| self.describe_group(id)).collect()
    }

    fn describe_group(&self, group_id: &str) -> DescribedGroup {
        let Some(g) = self.groups.get(group_id) else {
            return DescribedGroup {
                error_code: error_code::NONE,
                group_id: group_id.to_owned(),
                group_state: ClassicGroupState::Dead.name().to_owned(),
                protocol_type: String::new(),
                protocol_data: String::new(),
                members: Vec::new(),
            };
        };
        let stable = g.is_in_state(ClassicGroupState::Stable);
        let protocol = if stable {
            g.protocol_name.clone().unwrap_or_default()
        } else {
            String::new()
        };
        let members = g
            .members
            .values()
            .map(|m| DescribedGroupMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                member_metadata: if stable {
                    m.metadata(&protocol).cloned().unwrap_or_default()
                } else {
                    Default::default()
                },
                member_assignment: if stable {
                    m.assignment.clone()
                } else {
                    Default::default()
                },
            })
            .collect();
        DescribedGroup {
            error_code: error_code::NONE,
            group_id: group_id.to_owned(),
            group_state: g.state.name().to_owned(),
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol_data: protocol,
            members,
        }
    }

    /// Every group, by id, that passes the filters (states, case-insensitive; types: these
    /// groups are all "classic").
    pub(super) fn list_groups(&self, request: &ListGroupsRequest) -> Vec<ListedGroup> {
        let state_ok = |state: &str| {
            request.states_filter.is_empty()
                || request
                    .states_filter
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(state))
        };
        let type_ok = request.types_filter.is_empty()
            || request
                .types_filter
                .iter()
                .any(|t| t.eq_ignore_ascii_case("classic"));
        self.groups
            .values()
            .filter(|g| type_ok && state_ok(g.state.name()))
            .map(|g| ListedGroup {
                group_id: g.group_id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                group_state: g.state.name().to_owned(),
                group_type: "classic".to_owned(),
            })
            .collect()
    }
}
