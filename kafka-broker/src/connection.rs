//! One client connection: read frames, handle each request in order, write
//! its response. Like Kafka, a connection's requests are processed one at a
//! time, so responses leave in request order.
//!
//! On a TLS listener the handshake comes first; on a SASL listener the
//! connection's [`Session`] decides what may be served until it has
//! authenticated.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::frame::{
    FrameDecoder, FrameError, decode_request, peek_request, write_size_prefixed_vectored,
};
use kafka_protocol::messages::{ResponseHeader, ResponseKind};
use kafka_protocol::vectored::{ChunkBuf, EncodeVectored, VectoredBuf};
use kafka_protocol::{ApiKey, Encode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::faults::FaultAction;
use crate::handlers::{
    Reply, RequestContext, dispatch, error_response, supported_versions,
    unsupported_version_response,
};
use crate::security::sasl::{AUTHENTICATION_TIMEOUT, MAX_RECEIVE_SIZE, Session, Verdict};
use crate::state::Shared;

/// How long a connection that failed SASL stays open after its error is
/// written (Kafka's `connection.failed.authentication.delay.ms` default,
/// KIP-306).
const FAILED_AUTHENTICATION_DELAY: std::time::Duration = std::time::Duration::from_millis(100);

/// Why a connection was closed by the broker.
#[derive(Debug, thiserror::Error)]
enum CloseReason {
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    #[error("undecodable request: {0}")]
    Decode(#[from] kafka_protocol::DecodeError),
    #[error("response could not be encoded: {0}")]
    Encode(#[from] kafka_protocol::EncodeError),
    #[error("unknown API key {0}")]
    UnknownApi(i16),
    #[error("{api:?} version {version} is not supported")]
    UnsupportedVersion { api: ApiKey, version: i16 },
    #[error("closed by a fault rule")]
    Fault,
    #[error("{0:?} before SASL authentication")]
    Unauthenticated(ApiKey),
    #[error("SASL: {0}")]
    Sasl(String),
    #[error("not authenticated within {0:?}")]
    AuthenticationTimeout(std::time::Duration),
}

/// Serves one connection until the client closes it or sends something
/// that cannot be answered; the reason is logged, never panicked on.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    broker_id: i32,
    stream: TcpStream,
    peer: SocketAddr,
) {
    let _ = stream.set_nodelay(true);
    let result = match shared.config.tls.as_ref().map(|tls| tls.acceptor()) {
        None => run(shared, broker_id, stream, peer).await,
        Some(acceptor) => match crate::security::tls::accept(&acceptor, stream).await {
            Ok(stream) => run(shared, broker_id, stream, peer).await,
            Err(e) => {
                // A scanner, a client that does not trust us, or plain text
                // on a TLS port: the peer's problem, not worth more than debug.
                tracing::debug!(%peer, broker_id, error = %e, "TLS handshake failed");
                return;
            }
        },
    };
    match result {
        Ok(()) => tracing::debug!(%peer, broker_id, "client closed the connection"),
        Err(reason) => tracing::info!(%peer, broker_id, %reason, "closing connection"),
    }
}

async fn run<S>(
    shared: Arc<Shared>,
    broker_id: i32,
    mut stream: S,
    peer: SocketAddr,
) -> Result<(), CloseReason>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let decoder = FrameDecoder::new(shared.config.socket_request_max_bytes);
    let anonymous = FrameDecoder::new(shared.config.socket_request_max_bytes.min(MAX_RECEIVE_SIZE));
    let authentication_deadline = tokio::time::Instant::now() + AUTHENTICATION_TIMEOUT;
    let mut session = Session::new(shared.sasl.clone());
    let mut input = BytesMut::with_capacity(64 * 1024);
    let mut ctx = RequestContext::new(shared, broker_id, peer.ip().to_string());
    loop {
        loop {
            // Chosen per frame: the first frame after authentication may
            // already be in the buffer, and may be large.
            let decoder = if session.is_authenticated() {
                decoder
            } else {
                anonymous
            };
            let Some(frame) = decoder.decode(&mut input)? else {
                break;
            };
            let mut output = VectoredBuf::new();
            if session.awaits_raw_token() {
                let token = session.raw_token(&frame).map_err(CloseReason::Sasl)?;
                let mut frame = BytesMut::with_capacity(4 + token.len());
                frame.extend_from_slice(&(token.len() as u32).to_be_bytes());
                frame.extend_from_slice(&token);
                stream.write_all(&frame).await?;
                stream.flush().await?;
                continue;
            }
            let handled = handle_frame(&mut ctx, &mut session, frame, &mut output).await?;
            if handled == Handled::Silenced {
                return discard_until_closed(stream, input).await;
            }
            if output.encoded_len() > 0 {
                let mut chunks = ChunkBuf::new(output.into_chunks()?);
                stream.write_all_buf(&mut chunks).await?;
                // TLS buffers records; without a flush the response may wait.
                stream.flush().await?;
            }
            if let Handled::Close(reason) = handled {
                // Kafka's connection.failed.authentication.delay.ms: clients
                // such as kafka-python drop a response that arrives with the
                // end of the stream, and would see a lost connection instead
                // of the error.
                tokio::time::sleep(FAILED_AUTHENTICATION_DELAY).await;
                // Best effort: a TLS client then sees close_notify, not a reset.
                let _ = tokio::time::timeout(std::time::Duration::from_secs(1), stream.shutdown())
                    .await;
                return Err(CloseReason::Sasl(reason));
            }
        }
        let read = if session.is_authenticated() {
            stream.read_buf(&mut input).await?
        } else {
            tokio::time::timeout_at(authentication_deadline, stream.read_buf(&mut input))
                .await
                .map_err(|_| CloseReason::AuthenticationTimeout(AUTHENTICATION_TIMEOUT))??
        };
        if read == 0 {
            return Ok(());
        }
    }
}

/// What became of a request frame.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Handled {
    /// Applied, its response (if it has one) appended to the output.
    Answered,
    /// Applied, but a fault rule dropped its response: the connection goes
    /// silent (see [`discard_until_closed`]).
    Silenced,
    /// Answered, and the connection closes once the response is written:
    /// a failed or out-of-order SASL step, after which Kafka closes too.
    Close(String),
}

/// A connection whose response was dropped behaves as one whose path to the
/// client broke after the request arrived: nothing more is answered, and
/// what the client sends next is read and thrown away, never applied, until
/// the client times out and closes it. Answering later requests instead
/// would hand the client something no TCP connection can deliver: responses
/// past a lost one.
async fn discard_until_closed<S: AsyncRead + Unpin>(
    mut stream: S,
    mut input: BytesMut,
) -> Result<(), CloseReason> {
    loop {
        input.clear();
        if stream.read_buf(&mut input).await? == 0 {
            return Ok(());
        }
    }
}

/// Handles one request frame, appending its response (if any) to `output`.
async fn handle_frame(
    ctx: &mut RequestContext,
    session: &mut Session,
    frame: Bytes,
    output: &mut VectoredBuf,
) -> Result<Handled, CloseReason> {
    let preamble = peek_request(&frame)?;
    let api =
        ApiKey::from_i16(preamble.api_key).ok_or(CloseReason::UnknownApi(preamble.api_key))?;
    if !session.allows(api) {
        return Err(CloseReason::Unauthenticated(api));
    }
    let version = preamble.api_version;
    let sasl = ctx.shared.sasl.is_some();
    let release = ctx.shared.config.kafka_version;
    if !supported_versions(api, sasl, release).is_some_and(|range| range.contains(version)) {
        if api == ApiKey::ApiVersions {
            let body = ResponseKind::ApiVersions(unsupported_version_response(sasl, release));
            return encode(output, preamble.correlation_id, api, 0, body.into())
                .map(|()| Handled::Answered);
        }
        return Err(CloseReason::UnsupportedVersion { api, version });
    }
    let (header, request) = decode_request(frame)?;
    ctx.client_id = header.client_id.unwrap_or_default();
    tracing::trace!(
        broker = ctx.broker_id,
        client = ctx.client_id,
        ?api,
        version,
        correlation_id = header.correlation_id,
        "request"
    );
    let fault = ctx.shared.faults.on_request(ctx.broker_id, api);
    if fault == Some(FaultAction::CloseConnection) {
        return Err(CloseReason::Fault);
    }
    if let Some(FaultAction::Error(code)) = fault
        && let Some(body) = error_response(&request, version, code)
    {
        tracing::debug!(?api, %code, "fault: error answered");
        return encode(output, header.correlation_id, api, version, body.into())
            .map(|()| Handled::Answered);
    }
    let (response, verdict) = match request {
        kafka_protocol::messages::RequestKind::SaslHandshake(r) => {
            let (body, verdict) = session.handshake(&r, version);
            (Some(ResponseKind::SaslHandshake(body).into()), verdict)
        }
        kafka_protocol::messages::RequestKind::SaslAuthenticate(r) => {
            let (body, verdict) = session.authenticate(&r);
            (Some(ResponseKind::SaslAuthenticate(body).into()), verdict)
        }
        request => (dispatch(ctx, request, version).await, Verdict::Continue),
    };
    match fault {
        Some(FaultAction::DropResponse) => {
            tracing::debug!(
                ?api,
                correlation_id = header.correlation_id,
                "fault: response dropped, connection silenced"
            );
            return Ok(Handled::Silenced);
        }
        Some(FaultAction::Delay(delay)) => tokio::time::sleep(delay).await,
        _ => {}
    }
    tracing::trace!(
        broker = ctx.broker_id,
        client = ctx.client_id,
        ?api,
        correlation_id = header.correlation_id,
        "answered"
    );
    if let Some(reply) = response {
        encode(output, header.correlation_id, api, version, reply)?;
    }
    Ok(match verdict {
        Verdict::Continue => Handled::Answered,
        Verdict::Close(reason) => Handled::Close(reason),
    })
}

fn encode(
    output: &mut VectoredBuf,
    correlation_id: i32,
    api: ApiKey,
    version: i16,
    reply: Reply,
) -> Result<(), CloseReason> {
    let header = ResponseHeader {
        correlation_id,
        ..Default::default()
    };
    let header_version = api.response_header_version(version);
    for parts in reply.records {
        output.queue_records(parts);
    }
    write_size_prefixed_vectored(output, |buf| {
        header.encode(buf, header_version)?;
        match &reply.body {
            ResponseKind::Fetch(fetch) => fetch.encode_vectored(buf, version),
            body => body.encode(buf, version),
        }
    })?;
    Ok(())
}

/// Handles one request frame (without its size prefix) as a connection of
/// broker `broker_id` would: the response frame, nothing (acks=0 or a
/// dropped response), or why the connection would be closed.
pub(crate) async fn handle_one(
    shared: Arc<Shared>,
    broker_id: i32,
    frame: Bytes,
) -> Result<Option<Bytes>, String> {
    let mut session = Session::new(shared.sasl.clone());
    let mut ctx = RequestContext::new(shared, broker_id, "127.0.0.1".to_owned());
    let mut output = VectoredBuf::new();
    handle_frame(&mut ctx, &mut session, frame, &mut output)
        .await
        .map_err(|reason| reason.to_string())?;
    if output.encoded_len() == 0 {
        return Ok(None);
    }
    let chunks = output.into_chunks().map_err(|e| e.to_string())?;
    Ok(Some(Bytes::from(chunks.concat())))
}
