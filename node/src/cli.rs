//! The `listwire` command line: `serve` and `dev-cluster`, the operator's `status`, and client
//! commands over the SDK.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::client::{Client, ServerFrame};
use crate::config::ServeArgs;
use crate::dev_cluster::DevClusterArgs;

mod busiest;
mod status;
mod watch;

/// listwire: real-time collaborative lists.
#[derive(Debug, Parser)]
#[command(name = "listwire", version = crate::telemetry::LONG_VERSION, about)]
pub struct Cli {
    /// Server URL for client commands.
    #[arg(
        long,
        global = true,
        env = "LISTWIRE_SERVER",
        default_value = "http://127.0.0.1:7070"
    )]
    pub server: String,
    /// Where client commands keep the signed-in session.
    #[arg(long, global = true, env = "LISTWIRE_SESSION")]
    pub session: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node (single node, embedded storage by default).
    Serve(Box<ServeArgs>),
    /// Run a cluster of full nodes in this process over one embedded store, for a first look.
    DevCluster(DevClusterArgs),
    /// Show a node's view of the cluster (needs the node's admin token).
    Status {
        /// The node to ask (default: `--server`).
        #[arg(long)]
        url: Option<String>,
        /// The node's admin token.
        #[arg(long, env = "LISTWIRE_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
        /// Print only the owner of this list.
        #[arg(long, conflicts_with = "busiest")]
        list: Option<Uuid>,
        /// Print the N lists this node is busiest with now (two samples, a second apart).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1000))]
        busiest: Option<u16>,
        /// How long to wait for the node's answer, in milliseconds.
        #[arg(long, default_value_t = 10_000)]
        timeout_ms: u64,
    },
    /// Create an account and sign in.
    Register {
        /// Username.
        username: String,
        /// Password (or env LISTWIRE_PASSWORD).
        #[arg(long, env = "LISTWIRE_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Sign in.
    Login {
        /// Username.
        username: String,
        /// Password (or env LISTWIRE_PASSWORD).
        #[arg(long, env = "LISTWIRE_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Show your lists.
    Lists,
    /// Create a list; prints its id.
    Create {
        /// Title.
        title: String,
        /// Anyone signed in may view and vote.
        #[arg(long)]
        public: bool,
        /// Add a poll allowing this many votes per person.
        #[arg(long)]
        poll_votes: Option<u32>,
        /// Let voters take votes back.
        #[arg(long)]
        allow_change: bool,
    },
    /// Show a list.
    Show {
        /// List id.
        list: Uuid,
    },
    /// Add an item.
    Add {
        /// List id.
        list: Uuid,
        /// Item text.
        text: String,
        /// Put it after this item (id or text); default: at the top.
        #[arg(long)]
        after: Option<String>,
    },
    /// Mark an item done (or not, with --undo).
    Done {
        /// List id.
        list: Uuid,
        /// Item id, id prefix or exact text.
        item: String,
        /// Mark it not done.
        #[arg(long)]
        undo: bool,
    },
    /// Vote for an item (or take the vote back with --undo).
    Vote {
        /// List id.
        list: Uuid,
        /// Item id, id prefix or exact text.
        item: String,
        /// Take the vote back.
        #[arg(long)]
        undo: bool,
    },
    /// Share a list with a user.
    Share {
        /// List id.
        list: Uuid,
        /// Username.
        user: String,
        /// editor, voter or viewer.
        #[arg(long, default_value = "editor")]
        role: String,
    },
    /// Print live changes of a list until interrupted.
    Watch {
        /// List id.
        list: Uuid,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredSession {
    server: String,
    username: String,
    user_id: Uuid,
    token: String,
}

/// Runs a client command.
pub async fn run_client(cli: Cli) -> anyhow::Result<()> {
    let session_path = cli.session.clone().unwrap_or_else(default_session_path);
    let anonymous = Client::new(&cli.server);
    match cli.command {
        Command::Serve(_) => bail!("serve is not a client command"),
        Command::DevCluster(_) => bail!("dev-cluster is not a client command"),
        Command::Status {
            url,
            admin_token,
            list,
            busiest,
            timeout_ms,
        } => {
            let request = status::StatusRequest {
                url: url.as_deref().unwrap_or(&cli.server),
                admin_token: admin_token.as_deref(),
                list,
                busiest: busiest.map(usize::from),
                timeout: std::time::Duration::from_millis(timeout_ms),
            };
            status::run(request).await?;
        }
        Command::Register { username, password } => {
            let session = anonymous.register(&username, &password).await?;
            save_session(&session_path, &cli.server, &username, &session)?;
            println!(
                "registered {username} ({}); session saved to {}",
                session.user_id,
                session_path.display()
            );
        }
        Command::Login { username, password } => {
            let session = anonymous.login(&username, &password).await?;
            save_session(&session_path, &cli.server, &username, &session)?;
            println!("signed in as {username}");
        }
        command => run_signed_in(command, signed_in(&session_path, &cli.server)?).await?,
    }
    Ok(())
}

async fn run_signed_in(command: Command, client: Client) -> anyhow::Result<()> {
    match command {
        Command::Lists => {
            for list in client.lists().await? {
                println!("{}  {:<7} {}", list.list_id, list.role, list.title);
            }
        }
        Command::Create {
            title,
            public,
            poll_votes,
            allow_change,
        } => {
            let mut body =
                json!({"title": title, "visibility": if public { "public" } else { "private" }});
            if let Some(max_votes) = poll_votes {
                body["poll"] = json!({"max_votes_per_user": max_votes, "allow_change": allow_change, "open": true});
            }
            println!("{}", client.create_list(body).await?);
        }
        Command::Show { list } => watch::print_state(&client.get_list(list).await?),
        Command::Add { list, text, after } => {
            let after = match after {
                Some(reference) => Some(resolve_item(&client, list, &reference).await?),
                None => None,
            };
            let seq = client
                .op(
                    list,
                    Uuid::new_v4(),
                    json!({"kind": "add_item", "text": text, "after": after}),
                )
                .await?;
            println!("added (seq {seq})");
        }
        Command::Done { list, item, undo } => {
            let item = resolve_item(&client, list, &item).await?;
            let seq = client
                .op(
                    list,
                    Uuid::new_v4(),
                    json!({"kind": "set_done", "item": item, "done": !undo}),
                )
                .await?;
            println!("ok (seq {seq})");
        }
        Command::Vote { list, item, undo } => {
            let item = resolve_item(&client, list, &item).await?;
            let kind = if undo { "unvote" } else { "vote" };
            let seq = client
                .op(list, Uuid::new_v4(), json!({"kind": kind, "item": item}))
                .await?;
            println!("ok (seq {seq})");
        }
        Command::Share { list, user, role } => {
            let seq = client
                .op(
                    list,
                    Uuid::new_v4(),
                    json!({"kind": "share", "user": user, "role": role}),
                )
                .await?;
            println!("shared (seq {seq})");
        }
        Command::Watch { list } => watch_list(&client, list).await?,
        Command::Serve(_)
        | Command::DevCluster(_)
        | Command::Status { .. }
        | Command::Register { .. }
        | Command::Login { .. } => {
            unreachable!("handled by run_client")
        }
    }
    Ok(())
}

async fn watch_list(client: &Client, list: Uuid) -> anyhow::Result<()> {
    let mut printer = watch::Printer::default();
    let mut since = None;
    loop {
        let mut live = client.connect().await?;
        live.subscribe(list, since).await?;
        loop {
            match live.next_within(std::time::Duration::from_secs(3600)).await {
                Ok(frame) => {
                    if let ServerFrame::Error { code, message, .. } = &frame {
                        bail!("{code}: {message}");
                    }
                    since = printer.print(&frame).or(since);
                }
                Err(crate::client::ClientError::Timeout) => continue,
                Err(error) => {
                    eprintln!("connection lost ({error}); reconnecting");
                    break;
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
}

async fn resolve_item(client: &Client, list: Uuid, reference: &str) -> anyhow::Result<Uuid> {
    if let Ok(id) = reference.parse::<Uuid>() {
        return Ok(id);
    }
    let state = client.get_list(list).await?;
    let items = state["items"].as_array().cloned().unwrap_or_default();
    let matches: Vec<&Value> = items
        .iter()
        .filter(|item| {
            item["text"].as_str() == Some(reference)
                || item["id"]
                    .as_str()
                    .is_some_and(|id| id.starts_with(reference))
        })
        .collect();
    match matches.as_slice() {
        [item] => item["id"]
            .as_str()
            .context("item without id")?
            .parse()
            .context("bad item id"),
        [] => bail!("no item matches {reference:?}"),
        _ => bail!("{reference:?} matches several items; use the item id"),
    }
}

fn default_session_path() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("listwire").join("session.json")
}

fn save_session(
    path: &PathBuf,
    server: &str,
    username: &str,
    session: &crate::client::Session,
) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let stored = StoredSession {
        server: server.into(),
        username: username.into(),
        user_id: session.user_id,
        token: session.token.clone(),
    };
    std::fs::write(path, serde_json::to_vec_pretty(&stored)?)
        .with_context(|| format!("writing {}", path.display()))
}

fn signed_in(path: &PathBuf, server: &str) -> anyhow::Result<Client> {
    let bytes = std::fs::read(path).with_context(|| {
        format!(
            "no session at {}; run `listwire register` or `listwire login` first",
            path.display()
        )
    })?;
    let stored: StoredSession =
        serde_json::from_slice(&bytes).context("session file is damaged; log in again")?;
    Ok(Client::new(server).with_token(&stored.token))
}
