//! `listwire status --busiest N`: the lists a node is busiest with now. Two samples of
//! `GET /v1/admin/lists`, a second apart; the lists ranked by messages admitted in between.
//! No metric names a list (that would explode their cardinality), so this is how an operator
//! finds a hot list.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::status::table;
use crate::admin::report::BusiestReport;
use crate::client::{Client, ClientError};
use crate::host::ListLoad;

/// How many lists each sample asks for: enough that a list that just turned hot is among them.
const SAMPLED: usize = 1000;
/// The time between the two samples.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// One list's load over the interval.
#[derive(Debug, Clone, PartialEq)]
pub struct Busy {
    /// The list.
    pub list: Uuid,
    /// Messages admitted per second over the interval.
    pub per_second: f64,
    /// Messages refused `busy` per second over the interval.
    pub refused_per_second: f64,
    /// Unanswered at the second sample.
    pub inflight: u64,
    /// Seconds it has been active on the node.
    pub active_secs: u64,
}

/// Samples `client`'s node twice and returns its node id and its `top` busiest lists now.
pub async fn sample(client: &Client, top: usize) -> Result<(String, Vec<Busy>), ClientError> {
    let first = client.admin_lists(SAMPLED).await?;
    let started = Instant::now();
    tokio::time::sleep(INTERVAL).await;
    let second = client.admin_lists(SAMPLED).await?;
    Ok((
        second.node.clone(),
        rank(&first, &second, started.elapsed(), top),
    ))
}

/// The lists of `second` by messages admitted since `first`, `elapsed` apart, busiest first.
pub fn rank(
    first: &BusiestReport,
    second: &BusiestReport,
    elapsed: Duration,
    top: usize,
) -> Vec<Busy> {
    let before: HashMap<Uuid, &ListLoad> =
        first.lists.iter().map(|load| (load.list, load)).collect();
    let seconds = elapsed.as_secs_f64().max(0.001);
    let mut ranked: Vec<Busy> = second
        .lists
        .iter()
        .map(|now| {
            let (per_second, refused_per_second) = match before.get(&now.list) {
                Some(was) => (
                    now.admitted.saturating_sub(was.admitted) as f64 / seconds,
                    now.refused.saturating_sub(was.refused) as f64 / seconds,
                ),
                // Activated since the first sample: all of its count is new.
                None if now.active_secs as f64 <= seconds.ceil() => {
                    (now.admitted as f64 / seconds, now.refused as f64 / seconds)
                }
                // Active before, but not among the busiest then: its average since activation
                // (its lifetime count over one second would be no rate at all).
                None => {
                    let active = now.active_secs.max(1) as f64;
                    (now.admitted as f64 / active, now.refused as f64 / active)
                }
            };
            Busy {
                list: now.list,
                per_second,
                refused_per_second,
                inflight: now.inflight,
                active_secs: now.active_secs,
            }
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.per_second
            .total_cmp(&a.per_second)
            .then(a.list.cmp(&b.list))
    });
    ranked.truncate(top);
    ranked
}

/// The table `listwire status --busiest` prints.
pub fn render(node: &str, busiest: &[Busy]) -> String {
    if busiest.is_empty() {
        return format!("{node} hosts no active lists\n");
    }
    let mut rows = vec![["LIST", "MSGS/S", "BUSY/S", "IN FLIGHT", "ACTIVE"]
        .map(str::to_owned)
        .to_vec()];
    for busy in busiest {
        rows.push(vec![
            busy.list.to_string(),
            format!("{:.1}", busy.per_second),
            format!("{:.1}", busy.refused_per_second),
            busy.inflight.to_string(),
            format!("{}s", busy.active_secs),
        ]);
    }
    format!(
        "{node}: its {} busiest lists over the last {} s\n\n{}\nMSGS/S: ops, subscribes and reads admitted; BUSY/S: refused busy (too many in flight)\n",
        busiest.len(),
        INTERVAL.as_secs(),
        table(&rows)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(list: u128, admitted: u64, refused: u64) -> ListLoad {
        ListLoad {
            list: Uuid::from_u128(list),
            admitted,
            refused,
            inflight: 0,
            active_secs: 60,
        }
    }

    fn just_activated(list: u128, admitted: u64) -> ListLoad {
        ListLoad {
            active_secs: 0,
            ..load(list, admitted, 0)
        }
    }

    fn report(lists: Vec<ListLoad>) -> BusiestReport {
        BusiestReport {
            node: "n1".into(),
            lists,
        }
    }

    // Goal: lists rank by what they admitted between the samples, not by their lifetime
    // totals, and a list that appeared in between counts whole.
    #[test]
    fn ranks_by_the_rate_between_samples() {
        let first = report(vec![load(1, 1_000_000, 0), load(2, 10, 0)]);
        let second = report(vec![
            load(1, 1_000_010, 0),
            load(2, 510, 7),
            just_activated(3, 100),
        ]);
        let ranked = rank(&first, &second, Duration::from_secs(1), 2);
        assert_eq!(ranked.len(), 2);
        assert_eq!(ranked[0].list, Uuid::from_u128(2));
        assert_eq!(ranked[0].per_second, 500.0);
        assert_eq!(ranked[0].refused_per_second, 7.0);
        assert_eq!(ranked[1].list, Uuid::from_u128(3));
        let table = render("n1", &ranked);
        assert!(table.contains(&Uuid::from_u128(2).to_string()), "{table}");
        assert!(table.contains("500.0"), "{table}");
    }

    // Goal (review): a long-active list that was not among the busiest in the first sample
    // counts its average since activation, not its lifetime count as one second's worth.
    #[test]
    fn a_list_new_to_the_second_sample_is_not_counted_whole_unless_just_activated() {
        let first = report(vec![load(2, 10, 0)]);
        let second = report(vec![load(2, 510, 0), load(4, 6_000, 0)]);
        let ranked = rank(&first, &second, Duration::from_secs(1), 2);
        assert_eq!(ranked[0].list, Uuid::from_u128(2));
        assert_eq!(ranked[1].list, Uuid::from_u128(4));
        assert_eq!(
            ranked[1].per_second, 100.0,
            "6,000 over its 60 s, not 6,000 a second"
        );
    }
}
