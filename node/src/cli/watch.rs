//! Human-readable printing of list state and live frames for `listwire show` and `watch`.

use std::collections::HashMap;

use serde_json::Value;

use crate::client::ServerFrame;

/// Remembers item texts so events can be printed by name.
#[derive(Default)]
pub struct Printer {
    texts: HashMap<String, String>,
}

impl Printer {
    /// Prints one frame; returns the seq the client now has, if it advanced.
    pub fn print(&mut self, frame: &ServerFrame) -> Option<u64> {
        match frame {
            ServerFrame::Snapshot { seq, state, .. } => {
                self.learn(state);
                print_state(state);
                Some(*seq)
            }
            ServerFrame::Delta { to, events, .. } => {
                for event in events {
                    println!("{}", self.describe(event));
                }
                Some(*to)
            }
            ServerFrame::Tally { seq, counts, .. } => {
                let mut line = format!("#{seq} tally:");
                for (item, votes) in counts.as_object().into_iter().flatten() {
                    line.push_str(&format!(" {}={}", self.name(item), votes));
                }
                println!("{line}");
                Some(*seq)
            }
            ServerFrame::Ack { .. } | ServerFrame::Error { .. } => None,
        }
    }

    fn learn(&mut self, state: &Value) {
        for item in state["items"].as_array().into_iter().flatten() {
            if let (Some(id), Some(text)) = (item["id"].as_str(), item["text"].as_str()) {
                self.texts.insert(id.to_owned(), text.to_owned());
            }
        }
    }

    fn name(&self, item: &str) -> String {
        self.texts
            .get(item)
            .cloned()
            .unwrap_or_else(|| item.chars().take(8).collect())
    }

    fn describe(&mut self, event: &Value) -> String {
        let seq = event["seq"].as_u64().unwrap_or(0);
        let kind = event["kind"].as_str().unwrap_or("?");
        let item = event["item"].as_str().unwrap_or_default().to_owned();
        if let (Some(text), false) = (event["text"].as_str(), item.is_empty()) {
            self.texts.insert(item.clone(), text.to_owned());
        }
        let detail = match kind {
            "add_item" | "edit_item" => format!("{:?}", event["text"].as_str().unwrap_or_default()),
            "set_done" => format!("{} done={}", self.name(&item), event["done"]),
            "vote" | "unvote" => format!("{} votes={}", self.name(&item), event["votes"]),
            "rename" => format!("{:?}", event["title"].as_str().unwrap_or_default()),
            "share" => format!(
                "{} as {}",
                event["username"].as_str().unwrap_or("?"),
                event["role"].as_str().unwrap_or("?")
            ),
            "unshare" => event["username"].as_str().unwrap_or("?").to_owned(),
            _ if !item.is_empty() => self.name(&item),
            _ => String::new(),
        };
        format!("#{seq} {kind} {detail}")
    }
}

/// Prints a list snapshot.
pub fn print_state(state: &Value) {
    println!(
        "{} (seq {}, {})",
        state["title"].as_str().unwrap_or("?"),
        state["seq"],
        state["visibility"].as_str().unwrap_or("?")
    );
    for item in state["items"].as_array().into_iter().flatten() {
        let mark = if item["done"].as_bool() == Some(true) {
            "x"
        } else {
            " "
        };
        let votes = item["votes"].as_u64().unwrap_or(0);
        let id: String = item["id"]
            .as_str()
            .unwrap_or_default()
            .chars()
            .take(8)
            .collect();
        println!(
            "  [{mark}] {} ({})  {id}",
            item["text"].as_str().unwrap_or_default(),
            count(votes, "vote", "votes")
        );
    }
}

/// `n` with the noun that agrees with it: "1 vote", "0 votes", "2 votes".
pub(crate) fn count(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

#[cfg(test)]
mod count_tests {
    use super::count;

    // Goal: one vote reads "1 vote", every other count the plural.
    #[test]
    fn the_noun_agrees_with_the_count() {
        assert_eq!(count(0, "vote", "votes"), "0 votes");
        assert_eq!(count(1, "vote", "votes"), "1 vote");
        assert_eq!(count(2, "vote", "votes"), "2 votes");
    }
}
