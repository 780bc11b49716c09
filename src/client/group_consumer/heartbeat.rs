//! The heartbeat thread.

use super::*;

/// The heartbeat thread: every `heartbeat.interval.ms` while the member is in a stable
/// generation it heartbeats; it leaves the group when the application has not polled within
/// `max.poll.interval.ms`, and flags a rejoin when the coordinator says so.
pub(super) async fn heartbeat(ctx: ClientContext, spec: GroupConsumerSpec, shared: Shared) {
    let mut view = ClusterView::new(ctx.clone());
    view.request_timeout = Duration::from_millis(spec.session_timeout_ms.max(1) as u64);
    loop {
        tokio::time::sleep(Duration::from_millis(spec.heartbeat_interval_ms)).await;
        let (coordinator, member_id, generation, stable, last_poll) = {
            let s = shared.lock().expect("membership lock");
            (
                s.coordinator,
                s.member_id.clone(),
                s.generation,
                s.stable,
                s.last_poll_ms,
            )
        };
        let (Some(coordinator), true) = (coordinator, stable) else {
            continue;
        };
        if view.partition_count(&spec.consumer.topics[0]).is_none() || view.is_stale() {
            let _ = view.refresh(&spec.consumer.topics).await;
        }
        let group = GroupId(str_bytes(&spec.group));
        let expired = ctx.clock.elapsed_ms() > last_poll + spec.max_poll_interval_ms as u64;
        let Ok(conn) = view.connection(coordinator).await else {
            view.mark_stale();
            continue;
        };
        if expired {
            // "consumer poll timeout has expired": leave, so the group rebalances without us.
            let request = RequestKind::LeaveGroup(
                LeaveGroupRequest::default()
                    .with_group_id(group)
                    .with_members(vec![MemberIdentity::default()
                        .with_member_id(str_bytes(&member_id))
                        .with_group_instance_id(
                            spec.group_instance_id.as_deref().map(str_bytes),
                        )]),
            );
            ctx.recorder.op_val(
                &ctx.id,
                OpType::Info,
                "leave",
                val!({ "group": spec.group.as_str(), "generation": generation, "reason": "max.poll.interval.ms expired" }),
            );
            let _ = conn
                .send(
                    ApiKey::LeaveGroup,
                    client_version(ApiKey::LeaveGroup),
                    &request,
                    view.request_timeout,
                )
                .await;
            let mut s = shared.lock().expect("membership lock");
            if spec.group_instance_id.is_none() {
                s.member_id.clear();
            }
            s.generation = -1;
            s.stable = false;
            s.rejoin_needed = true;
            continue;
        }
        let request = RequestKind::Heartbeat(
            HeartbeatRequest::default()
                .with_group_id(group)
                .with_generation_id(generation)
                .with_member_id(str_bytes(&member_id))
                .with_group_instance_id(spec.group_instance_id.as_deref().map(str_bytes)),
        );
        let code = match conn
            .send(
                ApiKey::Heartbeat,
                client_version(ApiKey::Heartbeat),
                &request,
                view.request_timeout,
            )
            .await
        {
            Ok(ResponseKind::Heartbeat(r)) => r.error_code,
            _ => {
                view.disconnect(coordinator);
                16
            }
        };
        let mut s = shared.lock().expect("membership lock");
        if s.generation != generation || s.member_id != member_id {
            continue; // the loop moved on meanwhile
        }
        if !COORDINATOR_ERRORS.contains(&code) {
            s.last_heartbeat_ms = ctx.clock.elapsed_ms();
        }
        match code {
            0 => {}
            REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION => s.rejoin_needed = true,
            UNKNOWN_MEMBER_ID | FENCED_INSTANCE_ID => {
                s.member_id.clear();
                s.generation = -1;
                s.stable = false;
                s.rejoin_needed = true;
            }
            c if COORDINATOR_ERRORS.contains(&c) && s.coordinator == Some(coordinator) => {
                s.coordinator = None;
            }
            _ => {}
        }
    }
}
