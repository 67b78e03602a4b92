//! Integration tests of a real node: loopback sockets, real WebSocket clients, real files.

mod support;

mod admin;
mod cli;
mod cluster;
mod cluster_metrics;
mod cluster_processes;
mod cluster_restarts;
mod cluster_safety;
mod crash;
mod dev_cluster;
mod exactly_once;
mod fencing;
mod hardening;
mod host;
mod http;
mod idempotency;
mod index;
mod limits;
mod live;
mod loading;
mod logs;
mod ops_metrics;
mod ops_prometheus;
mod ownership;
mod permissions;
mod postgres;
mod resume;
mod settle;
mod status;
mod tidy;
mod votes;
