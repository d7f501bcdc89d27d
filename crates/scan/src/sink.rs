//! Where a runner's observations go.

use crate::error::{ScanError, SinkError};
use std::future::Future;
use v6scope_assess::{Profile, assess};
use v6scope_model::{DomainObservation, Verdict};
use v6scope_store::{Store, TargetResult};

/// Takes each evaluated target. `put` may wait (back-pressure): the runner
/// evaluates no more targets than its concurrency meanwhile.
pub trait Sink {
    fn put(&mut self, idx: i64, observation: DomainObservation) -> impl Future<Output = Result<(), SinkError>>;
}

/// The profiles named (or files given); `internetnl` when none is.
pub fn load_profiles(names: &[String]) -> Result<Vec<Profile>, ScanError> {
    let names: Vec<String> = if names.is_empty() {
        vec!["internetnl".into()]
    } else {
        names.to_vec()
    };
    names
        .iter()
        .map(|n| Profile::load(n).map_err(|e| ScanError::Settings(e.to_string())))
        .collect()
}

/// An observation with its verdicts, one per profile.
pub struct Judged {
    pub idx: i64,
    pub observation: DomainObservation,
    pub verdicts: Vec<Verdict>,
}

/// Judges an observation under every profile.
pub fn judge(observation: &DomainObservation, profiles: &[Profile]) -> Vec<Verdict> {
    profiles.iter().map(|p| assess(observation, p)).collect()
}

/// Called with each judged target before it is stored (JSON Lines, CSV, tallies).
pub type Observer = Box<dyn FnMut(&Judged) -> Result<(), SinkError> + Send>;

/// Judges observations and writes them to a store in batches, on a thread
/// of its own so the store never blocks the probes.
pub struct StoreSink {
    profiles: Vec<Profile>,
    observer: Option<Observer>,
    tx: Option<tokio::sync::mpsc::Sender<Judged>>,
    writer: Option<std::thread::JoinHandle<Result<Box<dyn Store>, SinkError>>>,
}

/// Targets written to the store in one transaction at most.
const BATCH: usize = 200;

impl StoreSink {
    pub fn new(mut store: Box<dyn Store>, run: i64, profiles: Vec<Profile>) -> StoreSink {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Judged>(1024);
        let writer = std::thread::spawn(move || -> Result<Box<dyn Store>, SinkError> {
            let mut batch: Vec<Judged> = Vec::with_capacity(BATCH);
            // Whatever has arrived is written at once: batches grow with the rate.
            while let Some(first) = rx.blocking_recv() {
                batch.push(first);
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(item) => batch.push(item),
                        Err(_) => break,
                    }
                }
                let results: Vec<TargetResult<'_>> = batch
                    .iter()
                    .map(|j| TargetResult {
                        idx: j.idx,
                        observation: &j.observation,
                        verdicts: &j.verdicts,
                    })
                    .collect();
                store.save_results(run, &results)?;
                batch.clear();
            }
            Ok(store)
        });
        StoreSink {
            profiles,
            observer: None,
            tx: Some(tx),
            writer: Some(writer),
        }
    }

    /// Calls `observer` with every judged target before it is stored.
    pub fn with_observer(mut self, observer: Observer) -> StoreSink {
        self.observer = Some(observer);
        self
    }

    /// Writes what is left and hands the store back.
    pub fn finish(mut self) -> Result<Box<dyn Store>, SinkError> {
        drop(self.tx.take());
        self.writer
            .take()
            .expect("finish is called once")
            .join()
            .map_err(|_| SinkError::Writer("the store writer panicked".into()))?
    }

    fn writer_error(&mut self) -> SinkError {
        drop(self.tx.take());
        match self.writer.take().map(|w| w.join()) {
            Some(Ok(Err(e))) => e,
            Some(Err(_)) => SinkError::Writer("the store writer panicked".into()),
            _ => SinkError::Writer("the store writer stopped".into()),
        }
    }
}

impl Sink for StoreSink {
    async fn put(&mut self, idx: i64, observation: DomainObservation) -> Result<(), SinkError> {
        let verdicts = judge(&observation, &self.profiles);
        let judged = Judged {
            idx,
            observation,
            verdicts,
        };
        if let Some(observer) = self.observer.as_mut() {
            observer(&judged)?;
        }
        let Some(tx) = self.tx.as_ref() else {
            return Err(SinkError::Writer("the store writer stopped".into()));
        };
        if tx.send(judged).await.is_err() {
            return Err(self.writer_error());
        }
        Ok(())
    }
}
