//! `kafka-broker`: run an in-process cluster from the command line.
//!
//! ```text
//! kafka-broker --listen 127.0.0.1:0 --brokers 3 [--default-partitions N]
//!              [--auto-create-topics true|false] [--kafka-version 2.8|3.5|3.9|4.0]
//!              [--config name=value]...
//!              [--tls-cert PATH --tls-key PATH [--tls-client-ca PATH]]
//!              [--sasl-mechanisms PLAIN,SCRAM-SHA-256,SCRAM-SHA-512]
//!              [--sasl-user NAME:PASSWORD]...
//! ```
//!
//! `--tls-cert`/`--tls-key` (PEM files: the chain, server certificate
//! first, and its key) make every listener TLS; `--sasl-mechanisms` with
//! at least one `--sasl-user` makes every connection authenticate. Both
//! together are SASL_SSL.
//!
//! Prints one line, the bootstrap servers, once every listener accepts
//! connections; stops cleanly on SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::process::ExitCode;

use kafka_broker::{BrokerConfig, Cluster, SaslSettings, TlsIdentity};

const USAGE: &str = "usage: kafka-broker [--listen HOST:PORT] [--brokers N] [--data-dir DIR]
                    [--default-partitions N] [--auto-create-topics true|false]
                    [--kafka-version 2.8|3.5|3.9|4.0] [--config NAME=VALUE]...
                    [--tls-cert PATH --tls-key PATH [--tls-client-ca PATH]]
                    [--sasl-mechanisms LIST] [--sasl-user NAME:PASSWORD]...

  --kafka-version V       offer the API versions brokers of Apache Kafka V offer
                          (of those implemented); default: every version
  --tls-cert PATH         PEM certificate chain (server certificate first); with
                          --tls-key, every listener speaks TLS 1.2/1.3
                          (security.protocol SSL, or SASL_SSL with SASL)
  --tls-key PATH          PEM private key of that certificate
  --tls-client-ca PATH    PEM CA certificates; clients must present a certificate
                          one of them signed (mutual TLS, ssl.client.auth=required)
  --sasl-mechanisms LIST  comma-separated: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512;
                          every connection must then authenticate
                          (SASL_PLAINTEXT, or SASL_SSL with TLS)
  --sasl-user NAME:PASSWORD
                          a user for every enabled mechanism (repeatable; the
                          name ends at the first ':')";

/// Reads the TLS identity once both halves are known.
fn tls_identity(
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
) -> Result<Option<TlsIdentity>, String> {
    let (cert, key) = match (cert, key, &client_ca) {
        (None, None, None) => return Ok(None),
        (Some(cert), Some(key), _) => (cert, key),
        _ => {
            return Err(format!(
                "--tls-cert and --tls-key go together, and --tls-client-ca needs them\n{USAGE}"
            ));
        }
    };
    let read = |path: &str| std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"));
    let identity = match &client_ca {
        None => TlsIdentity::from_pem(&read(&cert)?, &read(&key)?),
        Some(ca) => {
            TlsIdentity::requiring_client_certificates(&read(&cert)?, &read(&key)?, &read(ca)?)
        }
    };
    identity
        .map(Some)
        .map_err(|e| format!("--tls-cert {cert} --tls-key {key}: {e}"))
}

fn parse_args(args: impl Iterator<Item = String>) -> Result<BrokerConfig, String> {
    let mut config = BrokerConfig::default();
    let (mut tls_cert, mut tls_key, mut tls_client_ca) = (None, None, None);
    let mut args = args.peekable();
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_owned());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let set = |config: &mut BrokerConfig, name: &str, value: &str| {
            config
                .set(name, value)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        match flag.as_str() {
            "--listen" => {
                let addr: SocketAddr = value
                    .parse()
                    .map_err(|e| format!("--listen {value}: {e}"))?;
                config.host = addr.ip();
                config.port = addr.port();
            }
            "--brokers" => set(&mut config, "brokers", &value)?,
            "--data-dir" => set(&mut config, "log.dirs", &value)?,
            "--default-partitions" => set(&mut config, "num.partitions", &value)?,
            "--auto-create-topics" => set(&mut config, "auto.create.topics.enable", &value)?,
            "--kafka-version" => set(&mut config, "kafka.version", &value)?,
            "--config" => {
                let (name, value) = value
                    .split_once('=')
                    .ok_or_else(|| format!("--config {value}: expected NAME=VALUE"))?;
                set(&mut config, name, value)?;
            }
            "--tls-cert" => tls_cert = Some(value),
            "--tls-key" => tls_key = Some(value),
            "--tls-client-ca" => tls_client_ca = Some(value),
            "--sasl-mechanisms" => {
                let mechanisms = SaslSettings::parse_mechanisms(&value)
                    .map_err(|e| format!("--sasl-mechanisms {value}: {e}"))?;
                config
                    .sasl
                    .get_or_insert_with(SaslSettings::default)
                    .mechanisms = mechanisms;
            }
            "--sasl-user" => {
                // The password is not echoed back in the error.
                let (name, password) = value
                    .split_once(':')
                    .ok_or("--sasl-user: expected NAME:PASSWORD")?;
                config
                    .sasl
                    .get_or_insert_with(SaslSettings::default)
                    .users
                    .insert(name.to_owned(), password.to_owned());
            }
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    config.tls = tls_identity(tls_cert, tls_key, tls_client_ca)?;
    Ok(config)
}

/// Resolves on SIGTERM or Ctrl-C. The handlers are registered here, before
/// the bootstrap line is printed: a signal sent as soon as that line is read
/// would otherwise meet the default action and kill the process without a
/// clean shutdown (exit by signal instead of status 0).
#[cfg(unix)]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}

#[cfg(not(unix))]
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KAFKA_BROKER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = match parse_args(std::env::args().skip(1)) {
        Ok(config) => config,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let cluster = match Cluster::start(config).await {
            Ok(cluster) => cluster,
            Err(e) => {
                eprintln!("kafka-broker: {e}");
                return ExitCode::FAILURE;
            }
        };
        let signalled = match shutdown_signal() {
            Ok(signalled) => signalled,
            Err(e) => {
                eprintln!("kafka-broker: cannot handle SIGTERM/Ctrl-C: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("{}", cluster.bootstrap_servers());
        signalled.await;
        cluster.shutdown().await;
        ExitCode::SUCCESS
    })
}
