//! `listwire status`: a node's admin view of the cluster (`GET /v1/admin/cluster`) as a table,
//! or with `--list` the owner of one list.

use std::time::Duration;

use anyhow::anyhow;
use uuid::Uuid;

use crate::admin::report::{ClusterReport, ListReport};
use crate::client::{Client, ClientError};

/// What `listwire status` was asked.
pub struct StatusRequest<'a> {
    /// The node's base URL.
    pub url: &'a str,
    /// The node's admin token.
    pub admin_token: Option<&'a str>,
    /// Only this list's owner.
    pub list: Option<Uuid>,
    /// Instead, this many of the node's busiest lists.
    pub busiest: Option<usize>,
    /// How long to wait for the answer.
    pub timeout: Duration,
}

/// Asks the node and prints its view.
pub async fn run(request: StatusRequest<'_>) -> anyhow::Result<()> {
    let anonymous = Client::new(request.url);
    let client = match request.admin_token {
        Some(token) => anonymous.with_token(token),
        None => anonymous,
    };
    if let Some(top) = request.busiest {
        let timeout = request.timeout + super::busiest::INTERVAL;
        let (node, busiest) =
            match tokio::time::timeout(timeout, super::busiest::sample(&client, top)).await {
                Err(_elapsed) => return Err(no_answer(&request)),
                Ok(Err(error)) => return Err(explain(&request, error)),
                Ok(Ok(sampled)) => sampled,
            };
        print!("{}", super::busiest::render(&node, &busiest));
        return Ok(());
    }
    let asked = tokio::time::timeout(request.timeout, client.admin_cluster(request.list)).await;
    let report = match asked {
        Err(_elapsed) => return Err(no_answer(&request)),
        Ok(Err(error)) => return Err(explain(&request, error)),
        Ok(Ok(report)) => report,
    };
    match &report.list {
        Some(list) => println!("{}", render_owner(list)),
        None => print!("{}", render(&report)),
    }
    Ok(())
}

fn no_answer(request: &StatusRequest<'_>) -> anyhow::Error {
    anyhow!(
        "no answer from {} within {} ms",
        request.url,
        request.timeout.as_millis()
    )
}

/// The error as an operator can act on it.
fn explain(request: &StatusRequest<'_>, error: ClientError) -> anyhow::Error {
    let url = request.url;
    match error {
        ClientError::Api { status: 401, .. } if request.admin_token.is_none() => anyhow!(
            "{url} needs its admin token (401): pass --admin-token or set LISTWIRE_ADMIN_TOKEN"
        ),
        ClientError::Api { status: 401, .. } => anyhow!(
            "{url} refused the admin token (401): use the --admin-token the node was started with"
        ),
        ClientError::Api { status: 404, .. } => anyhow!(
            "{url} has no admin API (404): the node was started without --admin-token \
             (LISTWIRE_ADMIN_TOKEN), or it is not a listwire node"
        ),
        ClientError::Api {
            status: 429,
            retry_after_ms,
            ..
        } => anyhow!(
            "{url} rate-limited this call (429): retry in {} ms",
            retry_after_ms.unwrap_or(1000)
        ),
        ClientError::Transport(detail) => anyhow!("cannot reach {url}: {detail}"),
        other => anyhow!("{url}: {other}"),
    }
}

/// The summary line and the members table.
pub fn render(report: &ClusterReport) -> String {
    let mut out = String::new();
    if report.clustered {
        out.push_str(&format!(
            "{} sees {} members; majority: {}; serving hosts: {}\n\n",
            report.node,
            report.members.len(),
            yes_no(report.has_majority),
            if report.serving_hosts.is_empty() {
                "none".to_owned()
            } else {
                report.serving_hosts.join(", ")
            }
        ));
    } else {
        out.push_str(&format!(
            "{} runs alone (not in a cluster) and owns every list\n\n",
            report.node
        ));
    }
    let header = [
        "NODE",
        "STATE",
        "LIVE",
        "ROLES",
        "CLIENT",
        "LISTS",
        "GENERATION",
    ];
    let mut rows = vec![header.map(str::to_owned).to_vec()];
    for member in &report.members {
        let marker = if member.node_id == report.node {
            " *"
        } else {
            ""
        };
        rows.push(vec![
            format!("{}{marker}", member.node_id),
            member.state.clone(),
            yes_no(member.live).to_owned(),
            member.roles.join(","),
            member.client_addr.clone(),
            member
                .active_lists
                .map_or_else(|| "-".to_owned(), |count| count.to_string()),
            member.generation.to_string(),
        ]);
    }
    out.push_str(&table(&rows));
    out.push_str("\n* answered this call; LISTS: active lists (- when unknown)\n");
    out
}

/// One line naming a list's owner.
pub fn render_owner(list: &ListReport) -> String {
    let Some(owner) = &list.owner else {
        return format!("list {}: no owner now (no host serves)", list.id);
    };
    let addr = list.owner_client_addr.as_deref().unwrap_or("unknown");
    let active = match list.active {
        Some(true) => "yes",
        Some(false) => "no (it loads on first use)",
        None => "unknown (the owner did not answer)",
    };
    format!(
        "list {}: owner {owner} (clients at {addr}); active there: {active}",
        list.id
    )
}

fn yes_no(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

/// Left-aligned columns two spaces apart, the numbers (the last two columns) right-aligned.
pub(crate) fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|column| rows.iter().map(|row| row[column].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut cells = Vec::with_capacity(columns);
        for (column, cell) in row.iter().enumerate() {
            let width = widths[column];
            if column + 2 >= columns {
                cells.push(format!("{cell:>width$}"));
            } else {
                cells.push(format!("{cell:<width$}"));
            }
        }
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::report::MemberReport;

    fn member(node_id: &str, state: &str, live: bool, active_lists: Option<u64>) -> MemberReport {
        MemberReport {
            node_id: node_id.into(),
            generation: 1_764_000_000_000,
            roles: vec!["host".into(), "gateway".into()],
            state: state.into(),
            live,
            internode_addr: Some("127.0.0.1:7290".into()),
            client_addr: format!("127.0.0.1:707{}", &node_id[5..]),
            protocol_version: 1,
            active_lists,
        }
    }

    /// Goal: the table has a header and one aligned row per member, marks the answering
    /// node, shows unknown counts as `-`, and the summary names majority and serving hosts.
    #[test]
    fn renders_members_as_a_table() {
        let report = ClusterReport {
            node: "node-0".into(),
            clustered: true,
            has_majority: true,
            serving_hosts: vec!["node-0".into(), "node-1".into()],
            members: vec![
                member("node-0", "serving", true, Some(12)),
                member("node-1", "serving", true, Some(3)),
                member("node-2", "draining", false, None),
            ],
            list: None,
        };
        let text = render(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "node-0 sees 3 members; majority: yes; serving hosts: node-0, node-1"
        );
        assert_eq!(
            lines[2],
            "NODE      STATE     LIVE  ROLES         CLIENT          LISTS     GENERATION"
        );
        assert_eq!(
            lines[3],
            "node-0 *  serving   yes   host,gateway  127.0.0.1:7070     12  1764000000000"
        );
        assert_eq!(
            lines[5],
            "node-2    draining  no    host,gateway  127.0.0.1:7072      -  1764000000000"
        );
        assert!(lines[6].is_empty() && lines[7].starts_with("* answered this call"));
    }

    /// Goal: the owner line names the owner, its client address and whether the list is
    /// active there, and says so when nobody owns the list.
    #[test]
    fn renders_a_list_owner() {
        let mut list = ListReport {
            id: Uuid::from_u128(1),
            owner: Some("node-1".into()),
            owner_client_addr: Some("127.0.0.1:7071".into()),
            active: Some(true),
        };
        assert_eq!(
            render_owner(&list),
            "list 00000000-0000-0000-0000-000000000001: owner node-1 (clients at 127.0.0.1:7071); active there: yes"
        );
        list.owner = None;
        assert!(render_owner(&list).ends_with("no owner now (no host serves)"));
    }
}
