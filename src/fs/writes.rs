//! The staged files of the mount, by inode: which files are being written right now.
//!
//! Design note: a file is "local" while it has a [`StagedFile`]: its size and content come
//! from the staging file, not from S3, and every handle of it (even read-only ones opened
//! before the writer) reads the staged bytes. The registry is a plain map behind a
//! `std::sync::Mutex` (never held across an `.await`); each staged file has its own
//! `tokio::sync::Mutex`, held while it waits on S3.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::staged::{StagedFile, WriteCtx};
use crate::config::WriteConfig;
use crate::storage::ObjectStore;

/// A staged file shared by the handles of one inode.
pub type SharedStaged = Arc<tokio::sync::Mutex<StagedFile>>;

/// The registry of staged files.
pub struct Writes {
    ctx: Arc<WriteCtx>,
    by_ino: Mutex<HashMap<u64, SharedStaged>>,
}

impl Writes {
    /// An empty registry whose files upload to `store`.
    pub fn new(store: Arc<dyn ObjectStore>, config: WriteConfig) -> Self {
        Writes {
            ctx: Arc::new(WriteCtx { store, config }),
            by_ino: Mutex::new(HashMap::new()),
        }
    }

    /// What new staged files are made with.
    pub fn ctx(&self) -> Arc<WriteCtx> {
        self.ctx.clone()
    }

    /// The staged file of `ino`, if it is being written.
    pub fn get(&self, ino: u64) -> Option<SharedStaged> {
        self.by_ino.lock().unwrap().get(&ino).cloned()
    }

    /// Whether `ino` is being written (its attributes are local then).
    pub fn is_local(&self, ino: u64) -> bool {
        self.by_ino.lock().unwrap().contains_key(&ino)
    }

    /// Registers `file` for `ino`, or returns the one registered meanwhile.
    pub fn insert_or_get(&self, ino: u64, file: StagedFile) -> SharedStaged {
        self.by_ino
            .lock()
            .unwrap()
            .entry(ino)
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(file)))
            .clone()
    }

    /// Whether `state` is still the staged file registered for `ino` (a file whose last
    /// handle closed is dropped from the registry; one who found it just before must not
    /// keep writing to it alone).
    pub fn is_current(&self, ino: u64, state: &SharedStaged) -> bool {
        self.by_ino
            .lock()
            .unwrap()
            .get(&ino)
            .is_some_and(|s| Arc::ptr_eq(s, state))
    }

    /// Forgets `state`, the staged file of `ino`, after its last handle closed — unless
    /// another one has been registered for `ino` since.
    pub fn remove(&self, ino: u64, state: &SharedStaged) {
        let mut by_ino = self.by_ino.lock().unwrap();
        if by_ino.get(&ino).is_some_and(|s| Arc::ptr_eq(s, state)) {
            by_ino.remove(&ino);
        }
    }

    /// Every staged file, with its inode number.
    pub fn all(&self) -> Vec<(u64, SharedStaged)> {
        self.by_ino
            .lock()
            .unwrap()
            .iter()
            .map(|(i, s)| (*i, s.clone()))
            .collect()
    }
}
