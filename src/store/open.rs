//! Opening a store: its metadata and settings, created in one synced
//! batch for a new store (SPEC §5) and checked against the caller's
//! options for an existing one; the format stamp that ends a migration.

use rocksdb::WriteOptions;

use super::{Batch, Cf, Settings, Store, FORMAT_VERSION, MIGRATABLE_FORMATS};
use crate::codec;
use crate::error::{CorruptionError, OpenError, Result};
use crate::keys::meta;
use crate::partition::Partition;
use crate::store::Options;

impl Store {
    /// Whether no column family holds a key.
    pub(super) fn is_empty(&self) -> Result<bool> {
        // (a foreign database may hold its keys in RocksDB's default family)
        match self.db.iterator(rocksdb::IteratorMode::Start).next() {
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(_)) => return Ok(false),
            None => {}
        }
        for cf in Cf::ALL {
            if self.db.cf_handle(cf.name()).is_some() && self.last_key(cf)?.is_some() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Puts a setting: into the creation batch while the store is being
    /// created, so a crash leaves no store or a whole one; otherwise as its
    /// own write.
    pub(crate) fn put_setting(&self, key: &[u8], value: Vec<u8>) -> Result<()> {
        if let Some(batch) = self.creation.lock().as_mut() {
            batch.put(Cf::Meta, key, value);
            return Ok(());
        }
        let mut batch = Batch::new();
        batch.put(Cf::Meta, key, value);
        // (an older store's missing default, written by its open: even
        // while a job is recorded, which the open's migration finishes)
        self.check_writable()?;
        self.commit_raw(batch, self.sync_writes)
    }

    /// Commits a new store's creation batch — its format version, settings
    /// and partition, and every initial setting the open put — as one
    /// synced write (SPEC §5: a store is created in one synced batch).
    pub(crate) fn finish_creation(&self) -> Result<()> {
        let Some(batch) = self.creation.lock().take() else {
            return Ok(());
        };
        let mut sync = WriteOptions::default();
        sync.set_sync(true);
        self.db.write_opt(batch.into_write_batch(self)?, &sync)?;
        Ok(())
    }

    /// Reads (or, for a new store, prepares the creation batch with) the
    /// format version and settings. Returns the settings, the format version
    /// found on disk and whether the store existed.
    pub(super) fn load_or_init_meta(
        &self,
        existed: bool,
        options: &Options,
    ) -> Result<(Settings, u32, bool)> {
        // (a read-only open of a foreign database may find no `meta` at all)
        let version: Option<u32> = match self.db.cf_handle(Cf::Meta.name()) {
            Some(_) => self.get(Cf::Meta, meta::FORMAT_VERSION)?,
            None => None,
        };
        match version {
            // A directory RocksDB created but whose creation batch never
            // landed (a crash during creation) holds no key at all: it is
            // no store, and may be created.
            None if existed && !self.is_empty()? => Err(OpenError::NotAStore {
                path: self.path.display().to_string(),
            }
            .into()),
            None if options.read_only || !options.create_if_missing => Err(OpenError::Missing {
                path: self.path.display().to_string(),
            }
            .into()),
            None => {
                let settings = Settings {
                    utc_offset_minutes: options.utc_offset_minutes.unwrap_or(0),
                };
                // Creation is one synced batch (`finish_creation`): a store
                // must never exist without its settings.
                let mut batch = Batch::new();
                batch.put(
                    Cf::Meta,
                    meta::FORMAT_VERSION,
                    codec::encode(&FORMAT_VERSION)?,
                );
                batch.put(Cf::Meta, meta::SETTINGS, codec::encode(&settings)?);
                *self.creation.lock() = Some(batch);
                Ok((settings, FORMAT_VERSION, false))
            }
            Some(found) if found == FORMAT_VERSION || MIGRATABLE_FORMATS.contains(&found) => {
                let settings: Settings =
                    self.get(Cf::Meta, meta::SETTINGS)?
                        .ok_or_else(|| CorruptionError {
                            cf: Cf::Meta.name(),
                            what: "value",
                            key: meta::SETTINGS.to_vec(),
                            reason: "format version present but settings missing".into(),
                        })?;
                if let Some(requested) = options.utc_offset_minutes {
                    if requested != settings.utc_offset_minutes {
                        return Err(OpenError::OffsetMismatch {
                            stored_minutes: settings.utc_offset_minutes,
                            requested_minutes: requested,
                        }
                        .into());
                    }
                }
                Ok((settings, found, true))
            }
            Some(found) => Err(OpenError::UnsupportedFormat {
                found,
                supported: FORMAT_VERSION,
            }
            .into()),
        }
    }

    /// Reads (or, for a new store, writes) the store's partition. Stores
    /// created before partitions existed, and unpartitioned ones, have no
    /// key: they are [`Partition::WHOLE`].
    pub(super) fn load_or_init_partition(
        &self,
        existed: bool,
        options: &Options,
    ) -> Result<Partition> {
        let stored: Option<Partition> = self.get(Cf::Meta, meta::PARTITION)?;
        if existed {
            let stored = stored.unwrap_or(Partition::WHOLE);
            if let Some(requested) = options.partition {
                if requested != stored {
                    return Err(OpenError::SettingMismatch {
                        setting: "partition",
                        stored: stored.to_string(),
                        requested: requested.to_string(),
                    }
                    .into());
                }
            }
            return Ok(stored);
        }
        let partition = options.partition.unwrap_or(Partition::WHOLE);
        if partition != Partition::WHOLE {
            self.put_setting(meta::PARTITION, codec::encode(&partition)?)?;
        }
        Ok(partition)
    }

    /// Which partition of a deployment this store is.
    pub fn partition(&self) -> Partition {
        self.partition
    }

    /// The format version found on disk when the store was opened; lower than
    /// [`FORMAT_VERSION`] until a migration stamps the current one.
    pub fn format_found(&self) -> u32 {
        self.format_found
    }

    /// Records that the store now holds the current format, ending the
    /// migration job in the same batch. Synced: a migration must not be
    /// redone or lost silently.
    pub fn stamp_format_version(&mut self) -> Result<()> {
        let mut batch = Batch::new();
        batch.put(
            Cf::Meta,
            meta::FORMAT_VERSION,
            codec::encode(&FORMAT_VERSION)?,
        );
        batch.clear_job();
        self.write_synced(batch)?;
        self.format_found = FORMAT_VERSION;
        Ok(())
    }
}
