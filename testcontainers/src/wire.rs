//! The two admin calls a test cluster needs, CreateTopics and Metadata,
//! spoken directly over the Kafka protocol. kafka-client has no admin
//! client yet, and the child-process and Docker modes have no in-process
//! handle to create topics through.

use std::time::Duration;

use bytes::BytesMut;
use kafka_protocol::ErrorCode;
use kafka_protocol::frame::{FrameDecoder, decode_response_as, encode_request};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    CreateTopicsRequest, CreateTopicsResponse, MetadataRequest, MetadataResponse,
};
use kafka_protocol::{Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::TopicSpec;
use crate::error::{Error, Result};

/// CreateTopics v5 is flexible and understood by Kafka 2.4 onwards and by
/// the bundled broker (2..=7); Kafka 4 dropped only v0 and v1.
const CREATE_TOPICS_VERSION: i16 = 5;
/// Metadata v9: flexible, topic names (not ids), Kafka 2.4+.
const METADATA_VERSION: i16 = 9;
/// The largest response frame accepted.
const MAX_FRAME: usize = 64 << 20;

/// One connection, one request at a time.
struct Connection {
    broker: String,
    stream: TcpStream,
    input: BytesMut,
    correlation_id: i32,
}

impl Connection {
    async fn open(broker: &str, timeout: Duration) -> Result<Self> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(broker))
            .await
            .map_err(|_| network(broker, format!("connect timed out after {timeout:?}")))?
            .map_err(|e| network(broker, e.to_string()))?;
        Ok(Self {
            broker: broker.to_owned(),
            stream,
            input: BytesMut::new(),
            correlation_id: 0,
        })
    }

    async fn call<Q: Request, A: Response>(
        &mut self,
        request: &Q,
        version: i16,
        timeout: Duration,
    ) -> Result<A> {
        self.correlation_id += 1;
        let mut out = BytesMut::new();
        encode_request(
            &mut out,
            self.correlation_id,
            Some("kafka-testcontainers"),
            version,
            request,
        )
        .map_err(|e| network(&self.broker, format!("encode: {e}")))?;
        let exchange = async {
            self.stream
                .write_all(&out)
                .await
                .map_err(|e| network(&self.broker, e.to_string()))?;
            let decoder = FrameDecoder::new(MAX_FRAME);
            loop {
                match decoder.decode(&mut self.input) {
                    Ok(Some(frame)) => return Ok(frame),
                    Ok(None) => {}
                    Err(e) => return Err(network(&self.broker, format!("bad frame: {e}"))),
                }
                match self.stream.read_buf(&mut self.input).await {
                    Ok(0) => return Err(network(&self.broker, "connection closed".into())),
                    Ok(_) => {}
                    Err(e) => return Err(network(&self.broker, e.to_string())),
                }
            }
        };
        let frame = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| network(&self.broker, format!("no answer within {timeout:?}")))??;
        let (header, body) = decode_response_as::<A>(frame, version)
            .map_err(|e| network(&self.broker, format!("decode: {e}")))?;
        if header.correlation_id != self.correlation_id {
            return Err(network(
                &self.broker,
                format!(
                    "correlation id {} answered {}",
                    self.correlation_id, header.correlation_id
                ),
            ));
        }
        Ok(body)
    }
}

fn network(broker: &str, reason: String) -> Error {
    Error::Network {
        broker: broker.to_owned(),
        reason,
    }
}

fn first_server(bootstrap: &str) -> Result<&str> {
    bootstrap
        .split(',')
        .map(str::trim)
        .find(|s| !s.is_empty())
        .ok_or_else(|| Error::Config(format!("no bootstrap server in `{bootstrap}`")))
}

/// Creates `topic` through the broker at the head of `bootstrap`, then waits
/// (within `timeout`) until Metadata shows a leader for every partition.
pub(crate) async fn create_topic(
    bootstrap: &str,
    topic: &TopicSpec,
    timeout: Duration,
) -> Result<()> {
    let broker = first_server(bootstrap)?;
    let mut connection = Connection::open(broker, timeout).await?;
    let request = CreateTopicsRequest {
        topics: vec![CreatableTopic {
            name: topic.name.clone(),
            num_partitions: topic.partitions,
            replication_factor: topic.replication_factor,
            configs: topic
                .configs
                .iter()
                .map(|(name, value)| CreatableTopicConfig {
                    name: name.clone(),
                    value: Some(value.clone()),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        timeout_ms: i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX),
        ..Default::default()
    };
    let response: CreateTopicsResponse = connection
        .call(&request, CREATE_TOPICS_VERSION, timeout)
        .await?;
    for result in response.topics {
        let code = ErrorCode::from_code(result.error_code).unwrap_or(ErrorCode::UnknownServerError);
        if !code.is_ok() {
            return Err(Error::Kafka {
                operation: "create topic",
                name: result.name,
                code,
                message: result.error_message,
            });
        }
    }
    // A real Kafka answers CreateTopics before every broker's metadata
    // cache knows the leaders; a producer started at once would see
    // LEADER_NOT_AVAILABLE and back off for a while.
    let deadline = tokio::time::Instant::now() + timeout;
    let mut backoff = Duration::from_millis(5);
    loop {
        let request = MetadataRequest {
            topics: Some(vec![MetadataRequestTopic {
                name: Some(topic.name.clone()),
                ..Default::default()
            }]),
            allow_auto_topic_creation: false,
            ..Default::default()
        };
        let response: MetadataResponse =
            connection.call(&request, METADATA_VERSION, timeout).await?;
        let ready = response.topics.iter().any(|t| {
            t.error_code == 0
                && t.name.as_deref() == Some(topic.name.as_str())
                && !t.partitions.is_empty()
                && t.partitions
                    .iter()
                    .all(|p| p.error_code == 0 && p.leader_id >= 0)
        });
        if ready {
            return Ok(());
        }
        if tokio::time::Instant::now() + backoff > deadline {
            return Err(Error::Timeout {
                what: format!("leaders for every partition of `{}`", topic.name),
                waited: timeout,
            });
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_millis(100));
    }
}
