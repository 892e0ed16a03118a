//! Lists, describes (with lag) and deletes consumer groups, like Kafka's
//! `kafka-consumer-groups`, on the admin client.
//!
//! ```text
//! cargo run --example consumer_groups -- --bootstrap-server HOST:PORT --list
//! cargo run --example consumer_groups -- --bootstrap-server HOST:PORT --describe --group G
//! cargo run --example consumer_groups -- --bootstrap-server HOST:PORT --delete --group G
//!     [--command-config FILE]
//! ```
//!
//! `--describe` prints Kafka's columns: `GROUP TOPIC PARTITION
//! CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID`, one line
//! per partition that has a committed offset or an owner, `-` where there
//! is none. `--command-config` reads a Java properties file (a
//! `client.properties` with `security.protocol`, `sasl.jaas.config`, ...).

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use kafka_sdk::client::admin::{Admin, AdminConfig, OffsetSpec};
use kafka_sdk::client::consumer::IsolationLevel;
use kafka_sdk::client::producer::TopicPartition;

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    List,
    Describe(String),
    Delete(String),
}

/// The parsed command line.
#[derive(Debug, Clone)]
pub struct Args {
    bootstrap: String,
    action: Action,
    command_config: Option<String>,
}

const USAGE: &str = "usage: consumer_groups --bootstrap-server HOST:PORT (--list | --describe --group G | --delete --group G) [--command-config FILE]";

/// Parses the arguments (without the program name).
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut args = args.into_iter();
    let (mut bootstrap, mut group, mut command_config) = (None, None, None);
    let (mut list, mut describe, mut delete) = (false, false, false);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--bootstrap-server" => bootstrap = Some(value()?),
            "--group" => group = Some(value()?),
            "--command-config" => command_config = Some(value()?),
            "--list" => list = true,
            "--describe" => describe = true,
            "--delete" => delete = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let bootstrap = bootstrap.ok_or("--bootstrap-server is required")?;
    let action = match (list, describe, delete, group) {
        (true, false, false, None) => Action::List,
        (false, true, false, Some(g)) => Action::Describe(g),
        (false, false, true, Some(g)) => Action::Delete(g),
        (false, true, false, None) | (false, false, true, None) => {
            return Err("--describe and --delete need --group".into());
        }
        _ => return Err("give exactly one of --list, --describe, --delete".into()),
    };
    Ok(Args {
        bootstrap,
        action,
        command_config,
    })
}

/// Runs the command, writing its output to `out`.
pub async fn run(args: &Args, out: &mut impl Write) -> Result<(), String> {
    let mut config = AdminConfig::new();
    if let Some(path) = &args.command_config {
        let properties =
            kafka_sdk::client::properties_file::load(path).map_err(|e| e.to_string())?;
        for (name, value) in &properties {
            config.set(name, value).map_err(|e| e.to_string())?;
        }
    }
    config
        .set("bootstrap.servers", &args.bootstrap)
        .map_err(|e| e.to_string())?;
    let admin =
        Admin::new(config.build().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let result = match &args.action {
        Action::List => list(&admin, out).await,
        Action::Describe(group) => describe(&admin, group, out).await,
        Action::Delete(group) => {
            let deleted = admin
                .delete_consumer_groups(&[group.as_str()])
                .await
                .map_err(|e| e.to_string())?;
            match deleted.get(group) {
                Some(Ok(())) => writeln!(
                    out,
                    "Deletion of requested consumer groups ('{group}') was successful."
                )
                .map_err(|e| e.to_string()),
                Some(Err(e)) => Err(format!("deleting {group}: {e}")),
                None => Err(format!("no answer for {group}")),
            }
        }
    };
    admin.close();
    result
}

async fn list(admin: &Admin, out: &mut impl Write) -> Result<(), String> {
    for group in admin
        .list_consumer_groups()
        .await
        .map_err(|e| e.to_string())?
    {
        writeln!(out, "{}", group.group_id).map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn describe(admin: &Admin, group: &str, out: &mut impl Write) -> Result<(), String> {
    let described = admin
        .describe_consumer_groups(&[group])
        .await
        .map_err(|e| e.to_string())?
        .all()
        .map_err(|e| e.to_string())?;
    let description = described
        .get(group)
        .ok_or_else(|| format!("no description of {group}"))?;
    let committed = admin
        .list_consumer_group_offsets(group, None)
        .await
        .map_err(|e| e.to_string())?;
    // Who owns each partition, from the members' assignments.
    let mut owners = BTreeMap::new();
    for member in &description.members {
        for tp in &member.assignment {
            owners.insert(tp.clone(), member);
        }
    }
    let partitions: Vec<TopicPartition> = committed
        .keys()
        .chain(owners.keys())
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if partitions.is_empty() {
        return writeln!(
            out,
            "Consumer group '{group}' has no active members and no committed offsets."
        )
        .map_err(|e| e.to_string());
    }
    let ends = admin
        .list_offsets(
            &partitions
                .iter()
                .map(|tp| (tp.clone(), OffsetSpec::Latest))
                .collect(),
            IsolationLevel::ReadUncommitted,
        )
        .await
        .map_err(|e| e.to_string())?;
    writeln!(
        out,
        "GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID"
    )
    .map_err(|e| e.to_string())?;
    for tp in &partitions {
        let current = committed.get(tp).map(|o| o.offset);
        let end = ends.get(tp).and_then(|r| r.as_ref().ok()).map(|o| o.offset);
        let lag = match (current, end) {
            (Some(c), Some(e)) => Some((e - c).max(0)),
            _ => None,
        };
        let dash = |v: Option<i64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
        let (member, host, client) = owners.get(tp).map_or(("-", "-", "-"), |m| {
            (m.member_id.as_str(), m.host.as_str(), m.client_id.as_str())
        });
        writeln!(
            out,
            "{group} {} {} {} {} {} {member} {host} {client}",
            tp.topic,
            tp.partition,
            dash(current),
            dash(end),
            dash(lag)
        )
        .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    match runtime.block_on(run(&args, &mut stdout)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
