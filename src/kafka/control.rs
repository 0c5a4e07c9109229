//! What a message may be besides an event, and the consumer's side of
//! cross-partition merges (SPEC §7): the merge request, the handover it
//! sends to `into`'s partition, and the forwarding of a moved user's later
//! events — each step idempotent, so a replay after a crash repeats it
//! harmlessly.
//!
//! Messages (JSON):
//! - an event: `{"user", "kind", "ts", …}` (`timeline::json`);
//! - `{"merge": {"from", "into", "id", "force"}}`, keyed by `from`: merge
//!   `from` into `into` — here when both live in this partition, else by a
//!   handover through the log;
//! - `{"handover": {"merge_id", "from", "into", "events"}}`, keyed by
//!   `into`: written by the consumer of `from`'s partition, recorded by
//!   the consumer of `into`'s;
//! - `{"erase": {"user"}}`, keyed by the user: erase it here — or, for an
//!   id handed over to another partition, there (the request follows it)
//!   and its mark here.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{ConsumeError, Error, InputError, Problem, Result};
use crate::partition::Partition;
use crate::timeline::{json, Event};
use crate::users::MergeOptions;
use crate::{Db, Handover};

/// How long a produced message may take to be acknowledged.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// A merge request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The id merged away.
    pub from: String,
    /// The id it is merged into.
    pub into: String,
    /// The merge id (idempotence).
    pub id: String,
    /// Merge even when neither id is anonymous.
    #[serde(default)]
    pub force: bool,
}

/// One parsed message.
#[derive(Debug)]
pub enum Msg {
    /// An event.
    Event(Event),
    /// Merge two users.
    Merge(MergeRequest),
    /// Another partition's user history, for a merge.
    Handover(Handover),
    /// Erase a user (SPEC §5), in log order with its events.
    Erase(String),
}

/// An erasure request.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EraseRequest {
    user: String,
}

/// Parses a message payload.
pub fn parse(payload: &[u8]) -> std::result::Result<Msg, InputError> {
    let bad = |reason: String| InputError::new("record", Problem::Unparsable { reason });
    let text = std::str::from_utf8(payload)
        .map_err(|e| bad(format!("not UTF-8 (byte {})", e.valid_up_to())))?;
    let v: Value = json::parse_value(text).map_err(|e| bad(e.to_string()))?;
    if let Value::Object(map) = &v {
        if map.len() == 1 {
            if let Some(m) = map.get("merge") {
                return MergeRequest::deserialize(m)
                    .map(Msg::Merge)
                    .map_err(|e| bad(format!("merge: {e}")));
            }
            if let Some(e) = map.get("erase") {
                return EraseRequest::deserialize(e)
                    .map(|r| Msg::Erase(r.user))
                    .map_err(|e| bad(format!("erase: {e}")));
            }
            if let Some(h) = map.get("handover") {
                return Handover::deserialize(h)
                    .map(Msg::Handover)
                    .map_err(|e| bad(format!("handover: {e}")));
            }
        }
    }
    json::event(v).map(Msg::Event)
}

/// Delivery reports of the messages a consumer produces.
#[derive(Default)]
struct Delivery(Arc<Mutex<Vec<String>>>);

impl ClientContext for Delivery {}

impl ProducerContext for Delivery {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.0.lock().push(e.to_string());
        }
    }
}

/// The consumer's producer, made on first use.
pub(super) struct Outbox {
    brokers: String,
    topic: String,
    producer: Option<BaseProducer<Delivery>>,
    failures: Arc<Mutex<Vec<String>>>,
}

impl Outbox {
    pub(super) fn new(brokers: &str, topic: &str) -> Self {
        Self {
            brokers: brokers.to_owned(),
            topic: topic.to_owned(),
            producer: None,
            failures: Arc::default(),
        }
    }

    /// Sends `payload` keyed by `key` to `key`'s partition and waits until
    /// the broker has it: only then may the caller write what depends on it.
    fn send(&mut self, key: &str, partitions: u32, payload: &str) -> Result<()> {
        let producer = match &mut self.producer {
            Some(p) => p,
            slot => slot.insert(
                ClientConfig::new()
                    .set("bootstrap.servers", &self.brokers)
                    .set("enable.idempotence", "true")
                    .set("message.max.bytes", super::MAX_MESSAGE_BYTES.to_string())
                    .create_with_context(Delivery(Arc::clone(&self.failures)))
                    .map_err(super::broker)?,
            ),
        };
        let partition = Partition::of(key, partitions).index as i32;
        producer
            .send(
                BaseRecord::to(&self.topic)
                    .key(key)
                    .partition(partition)
                    .payload(payload),
            )
            .map_err(|(e, _)| super::broker(e))?;
        producer.flush(DELIVERY_TIMEOUT).map_err(super::broker)?;
        if let Some(reason) = self.failures.lock().pop() {
            return Err(ConsumeError::Broker { reason }.into());
        }
        Ok(())
    }

    /// Forwards an event of a user handed over to `into` (in another
    /// partition) as `into`'s. An event without an id gets one fixed by
    /// where it was read, so forwarding it again after a crash records it
    /// once.
    pub(super) fn forward(
        &mut self,
        db: &Db,
        mut event: Event,
        into: &str,
        partition: i32,
        offset: i64,
    ) -> Result<()> {
        event.user = into.to_owned();
        if event.event_id.is_none() {
            event.event_id = Some(format!("fwd/{}/{partition}/{offset}", self.topic));
        }
        let payload = json::to_json(&event).to_string();
        self.send(into, db.partition().count, &payload)
    }

    /// A merge request: here when `into` lives in this partition, else the
    /// handover goes to `into`'s partition and then `from` is erased here.
    pub(super) fn merge(&mut self, db: &Db, m: &MergeRequest) -> Result<()> {
        if db.partition().owns(&m.into) {
            db.merge(&m.from, &m.into, &m.id, MergeOptions { force: m.force })?;
            return Ok(());
        }
        let Some(h) = db.handover(&m.from, &m.into, &m.id, m.force)? else {
            return Ok(()); // handed over before this replay
        };
        let payload = serde_json::json!({ "handover": &h }).to_string();
        self.send(&m.into, db.partition().count, &payload)?;
        db.finish_handover(&h)?;
        Ok(())
    }
}

impl Outbox {
    /// A handover for this partition. When `into` was itself handed over
    /// to another partition meanwhile, the handover follows it there.
    pub(super) fn accept(&mut self, db: &Db, h: &Handover) -> Result<()> {
        match db.accept_handover(h) {
            Err(Error::Input(InputError {
                problem: Problem::Moved { into },
                ..
            })) => {
                let mut next = h.clone();
                next.into = into.clone();
                next.events.iter_mut().for_each(|e| e.user = into.clone());
                let payload = serde_json::json!({ "handover": &next }).to_string();
                self.send(&into, db.partition().count, &payload)
            }
            other => other.map(|_| ()),
        }
    }
}

impl Outbox {
    /// An erasure: of the user here, or — for an id handed over to another
    /// partition — sent on to the user it was merged into, then its mark
    /// here deleted (a replay sends it again; erasing twice is erasing).
    pub(super) fn erase(&mut self, db: &Db, user: &str) -> Result<()> {
        if let Some(into) = db.moved_to(user)? {
            let payload = serde_json::json!({ "erase": { "user": &into } }).to_string();
            self.send(&into, db.partition().count, &payload)?;
        }
        db.erase_user(user)?;
        Ok(())
    }
}

/// Whether `e` refuses one message (reported like a bad record) rather
/// than stopping the consumer.
pub(super) fn refuses_message(e: &Error) -> Option<InputError> {
    match e {
        Error::Input(i) => Some(i.clone()),
        Error::Merge(m) => Some(InputError::new(
            "merge",
            Problem::Unparsable {
                reason: m.to_string(),
            },
        )),
        Error::UnknownUser { user } => Some(InputError::new(
            "merge",
            Problem::Unparsable {
                reason: format!("unknown user {user:?}"),
            },
        )),
        _ => None,
    }
}
