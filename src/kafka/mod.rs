//! The Kafka consumer (SPEC §7, cargo feature `kafka`): one log partition
//! recorded into one store, exactly once.
//!
//! Owns the read loop — assign, poll, parse, batch, write, report — and
//! nothing of the store: every batch goes through
//! [`Db::record_batch_at`], which writes the events and the offset after
//! them in one atomic batch. The store's stored offset, not the group's
//! committed one, is where a restart resumes; the group's offset is
//! committed after each batch only so that lag monitors see progress.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::error::{ConsumeError, Error, InputError, Result};
use crate::partition::LogPosition;
use crate::timeline::{Event, RecordOutcome, MAX_BATCH_EVENTS};

mod control;
use crate::Db;
pub use control::{parse, MergeRequest, Msg};

/// The client library, for callers that produce to the same cluster or run
/// librdkafka's mock cluster (the tests do).
pub use rdkafka;

/// Longest accepted message payload (the same bound as an import line).
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;
/// Most bad messages a report keeps (the count goes on).
pub const MAX_REPORTED_BAD: usize = 100;

/// How to consume.
#[derive(Debug, Clone)]
pub struct ConsumeOptions {
    /// Bootstrap brokers, `host:port[,host:port…]`.
    pub brokers: String,
    /// The topic.
    pub topic: String,
    /// The log partition this store records.
    pub partition: i32,
    /// Consumer group whose committed offset follows the store's (for lag
    /// monitoring only); default `stickydb-TOPIC-PARTITION`.
    pub group: Option<String>,
    /// Messages per write (1..=[`MAX_BATCH_EVENTS`]).
    pub batch_messages: usize,
    /// A partial batch is written once its oldest message waited this long.
    pub linger_ms: u64,
    /// Bad messages reported and left out before the consumer stops.
    pub skip_bad: u64,
    /// Stop (after writing what is pending) once no message arrived for
    /// this long — for backfills and tests; `None` runs until stopped.
    pub exit_when_idle_ms: Option<u64>,
    /// Stop (after writing what is pending) at the partition's end as it
    /// was when the run started: catch up, then exit (backfills).
    pub until_end: bool,
    /// librdkafka's prefetch queue bound, KiB: the backpressure — the
    /// client fetches no further ahead of the writes than this.
    pub prefetch_kbytes: u32,
}

impl ConsumeOptions {
    /// Defaults for a topic partition on `brokers`.
    pub fn new(brokers: impl Into<String>, topic: impl Into<String>, partition: i32) -> Self {
        Self {
            brokers: brokers.into(),
            topic: topic.into(),
            partition,
            group: None,
            batch_messages: 1_000,
            linger_ms: 200,
            skip_bad: 0,
            exit_when_idle_ms: None,
            until_end: false,
            prefetch_kbytes: 64 << 10,
        }
    }
}

/// A message that was not an event, left out under `skip_bad`.
#[derive(Debug, Clone, PartialEq)]
pub struct BadMessage {
    /// Its offset.
    pub offset: i64,
    /// Why.
    pub error: InputError,
}

/// Where a consumer stands; passed to the progress callback after every
/// write and returned at the end.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsumeReport {
    /// The offset the store resumes at (after the last message written).
    pub next_offset: i64,
    /// Events recorded by this run.
    pub recorded: u64,
    /// Events the store already held (same user and event id).
    pub duplicates: u64,
    /// Bad messages left out by this run.
    pub skipped: u64,
    /// The first [`MAX_REPORTED_BAD`] of them.
    pub bad: Vec<BadMessage>,
    /// Writes made.
    pub batches: u64,
    /// Merge requests and handovers applied.
    pub controls: u64,
    /// Events of users handed over to another partition, forwarded there.
    pub forwarded: u64,
    /// Messages in the partition past `next_offset` when last asked.
    pub lag: Option<i64>,
}

struct Pending {
    events: Vec<Event>,
    /// The offset of each event.
    offsets: Vec<i64>,
    /// The offset after the last message taken (events or bad ones).
    next: Option<i64>,
    since: Option<Instant>,
}

/// Consumes `options.partition` of `options.topic` into `db` until `stop`
/// is set (a clean shutdown: what is pending is written first), the
/// partition has been idle for `exit_when_idle_ms`, or an error. Resumes
/// at the store's stored position (the partition's beginning when there is
/// none). A bad message beyond `skip_bad` stops it with nothing of the
/// pending batch written: [`ConsumeError::BadMessage`] names the partition
/// and offset.
pub fn consume(
    db: &Db,
    options: &ConsumeOptions,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&ConsumeReport),
) -> Result<ConsumeReport> {
    InputError::check_count("batch_messages", options.batch_messages, MAX_BATCH_EVENTS)?;
    check_assignment(db, options)?;
    let batch_messages = options.batch_messages.max(1);
    let topic = options.topic.as_str();
    let part = options.partition;
    LogPosition {
        topic: topic.to_owned(),
        partition: part,
        next_offset: 0,
    }
    .validate()?;
    let group = options
        .group
        .clone()
        .unwrap_or_else(|| format!("stickydb-{topic}-{part}"));
    let ends = Ends {
        topic: topic.to_owned(),
        partition: part,
        high: AtomicI64::new(-1),
    };
    let consumer: BaseConsumer<Ends> = ClientConfig::new()
        .set("bootstrap.servers", &options.brokers)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        // A stored position the log no longer holds (retention deleted it)
        // is an error, not a silent jump: the gap would be lost events.
        .set("auto.offset.reset", "error")
        .set(
            "queued.max.messages.kbytes",
            options.prefetch_kbytes.clamp(1, 1 << 21).to_string(),
        )
        .set("message.max.bytes", MAX_MESSAGE_BYTES.to_string())
        // the partition's end, for the lag, without a request of ours
        .set("statistics.interval.ms", "1000")
        .create_with_context(ends)
        .map_err(broker)?;
    // Asking the partition's bounds first connects to its leader: without
    // it the first fetch after `assign` waited ~500 ms for the client to
    // find the broker (measured against the mock cluster), every start.
    let (_, high) = consumer
        .fetch_watermarks(topic, part, Duration::from_secs(10))
        .map_err(broker)?;
    consumer.context().high.store(high, Ordering::Relaxed);
    let start = db.log_position(topic, part)?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, part, start.map_or(Offset::Beginning, Offset::Offset))
        .map_err(broker)?;
    consumer.assign(&tpl).map_err(broker)?;

    let end = options.until_end.then_some(high);
    let mut report = ConsumeReport {
        next_offset: start.unwrap_or(0),
        ..ConsumeReport::default()
    };
    let mut pending = Pending {
        events: Vec::with_capacity(batch_messages),
        offsets: Vec::with_capacity(batch_messages),
        next: None,
        since: None,
    };
    let linger = Duration::from_millis(options.linger_ms);
    let idle_limit = options.exit_when_idle_ms.map(Duration::from_millis);
    let mut last_message = Instant::now();
    let mut writer = Writer {
        db,
        options,
        consumer: &consumer,
        report: &mut report,
        progress,
        outbox: control::Outbox::new(&options.brokers, topic),
    };
    loop {
        let at_end = end.is_some_and(|e| pending.next.unwrap_or(writer.report.next_offset) >= e);
        if stop.load(Ordering::Relaxed) || at_end {
            writer.write(&mut pending)?;
            break;
        }
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(m)) => {
                last_message = Instant::now();
                let offset = m.offset();
                let parsed = match m.payload() {
                    None => Err(InputError::new("record", crate::error::Problem::Empty)),
                    Some(p) if p.len() > MAX_MESSAGE_BYTES => Err(InputError::new(
                        "record",
                        crate::error::Problem::TooLong {
                            len_bytes: p.len(),
                            max_bytes: MAX_MESSAGE_BYTES,
                        },
                    )),
                    Some(p) => parse(p),
                };
                match parsed {
                    Ok(Msg::Event(e)) => {
                        pending.events.push(e);
                        pending.offsets.push(offset);
                    }
                    Ok(control) => {
                        // In log order: the events before it are written
                        // first, then it, then the position after it.
                        writer.write(&mut pending)?;
                        writer.control(control, offset)?;
                    }
                    Err(e) => writer.bad(offset, e)?,
                }
                pending.next = Some(offset + 1);
                pending.since.get_or_insert_with(Instant::now);
                if pending.events.len() >= batch_messages {
                    writer.write(&mut pending)?;
                }
            }
            Some(Err(e)) => return Err(broker(e)),
            None => {
                if pending.since.is_some_and(|t| t.elapsed() >= linger) {
                    writer.write(&mut pending)?;
                }
                if idle_limit.is_some_and(|l| last_message.elapsed() >= l) {
                    writer.write(&mut pending)?;
                    break;
                }
            }
        }
    }
    writer.note_lag();
    Ok(report)
}

struct Writer<'a, 'p> {
    db: &'a Db,
    options: &'a ConsumeOptions,
    consumer: &'a BaseConsumer<Ends>,
    report: &'a mut ConsumeReport,
    progress: &'p mut dyn FnMut(&ConsumeReport),
    outbox: control::Outbox,
}

impl Writer<'_, '_> {
    /// A bad message: left out while `skip_bad` allows, else the end.
    fn bad(&mut self, offset: i64, error: InputError) -> Result<()> {
        if self.report.skipped >= self.options.skip_bad {
            return Err(ConsumeError::BadMessage {
                topic: self.options.topic.clone(),
                partition: self.options.partition,
                offset,
                error,
            }
            .into());
        }
        self.report.skipped += 1;
        if self.report.bad.len() < MAX_REPORTED_BAD {
            self.report.bad.push(BadMessage { offset, error });
        }
        Ok(())
    }

    /// A merge request or a handover at `offset` (its position is written
    /// with the next batch). Each is idempotent, so the replay of one whose
    /// position was not written yet repeats nothing.
    fn control(&mut self, msg: Msg, offset: i64) -> Result<()> {
        let done = match &msg {
            Msg::Merge(m) => self.outbox.merge(self.db, m),
            Msg::Handover(h) => self.outbox.accept(self.db, h),
            Msg::Erase(u) => self.outbox.erase(self.db, u),
            Msg::Event(_) => Ok(()),
        };
        match done {
            Ok(()) => {
                self.report.controls += 1;
                Ok(())
            }
            Err(e) => match control::refuses_message(&e) {
                Some(why) => self.bad(offset, why),
                None => Err(e),
            },
        }
    }

    /// Writes the pending events with the position after them. A batch the
    /// store refuses for one event loses that event as a bad message and
    /// is tried again without it; an event of a user handed over to another
    /// partition is forwarded there first.
    fn write(&mut self, pending: &mut Pending) -> Result<()> {
        let Some(next) = pending.next else {
            return Ok(());
        };
        let position = LogPosition {
            topic: self.options.topic.clone(),
            partition: self.options.partition,
            next_offset: next,
        };
        let outcomes = loop {
            match self.db.record_batch_at(&pending.events, &position) {
                Ok(out) => break out,
                Err(Error::Input(e)) if e.index.is_some_and(|i| i < pending.events.len()) => {
                    let i = e.index.unwrap_or(0);
                    let event = pending.events.remove(i);
                    let offset = pending.offsets.remove(i);
                    match &e.problem {
                        crate::error::Problem::Moved { into } => {
                            let into = into.clone();
                            let part = self.options.partition;
                            self.outbox.forward(self.db, event, &into, part, offset)?;
                            self.report.forwarded += 1;
                        }
                        _ => self.bad(offset, InputError { index: None, ..e })?,
                    }
                }
                Err(e) => return Err(e),
            }
        };
        for o in outcomes.iter().flatten() {
            match o {
                RecordOutcome::Duplicate => self.report.duplicates += 1,
                RecordOutcome::Recorded { .. } => self.report.recorded += 1,
            }
        }
        pending.events.clear();
        pending.offsets.clear();
        pending.next = None;
        pending.since = None;
        self.report.next_offset = next;
        self.report.batches += 1;
        // Only for monitoring: the store's position is the one that counts.
        let mut tpl = TopicPartitionList::new();
        if tpl
            .add_partition_offset(
                &self.options.topic,
                self.options.partition,
                Offset::Offset(next),
            )
            .is_ok()
        {
            let _ = self.consumer.commit(&tpl, CommitMode::Async);
        }
        self.note_lag();
        (self.progress)(self.report);
        Ok(())
    }

    /// The lag from the partition's end as librdkafka's statistics last
    /// reported it: no request (asking the broker waits behind the
    /// in-flight long-poll fetch — 450 ms at the end of every run).
    fn note_lag(&mut self) {
        let high = self.consumer.context().high.load(Ordering::Relaxed);
        if high >= 0 {
            self.report.lag = Some((high - self.report.next_offset).max(0));
        }
    }
}

/// The consumer's context: the partition's end from the statistics.
struct Ends {
    topic: String,
    partition: i32,
    high: AtomicI64,
}

impl rdkafka::ClientContext for Ends {
    fn stats(&self, s: rdkafka::Statistics) {
        let high = s
            .topics
            .get(&self.topic)
            .and_then(|t| t.partitions.get(&self.partition))
            .map_or(-1, |p| p.hi_offset);
        if high >= 0 {
            self.high.store(high, Ordering::Relaxed);
        }
    }
}

impl rdkafka::consumer::ConsumerContext for Ends {}

/// How many partitions `topic` has on `brokers`.
pub fn partition_count(brokers: &str, topic: &str) -> Result<u32> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(broker)?;
    let meta = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(broker)?;
    let found = meta
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map_or(0, |t| t.partitions().len());
    u32::try_from(found).ok().filter(|n| *n > 0).ok_or_else(|| {
        ConsumeError::Broker {
            reason: format!("topic {topic:?} has no partitions on {brokers}"),
        }
        .into()
    })
}

/// Refuses to record a log partition into another partition's store (every
/// event would be refused as another partition's user); an unpartitioned
/// store may record any log partition.
pub fn check_assignment(db: &Db, options: &ConsumeOptions) -> Result<()> {
    let p = db.partition();
    if p.count > 1 && i64::from(p.index) != i64::from(options.partition) {
        return Err(ConsumeError::Cluster {
            reason: format!(
                "the store is partition {p}; it cannot record {}[{}]",
                options.topic, options.partition
            ),
        }
        .into());
    }
    Ok(())
}

fn broker(e: rdkafka::error::KafkaError) -> Error {
    ConsumeError::Broker {
        reason: e.to_string(),
    }
    .into()
}
