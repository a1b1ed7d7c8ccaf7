//! Scratch buffers a thread keeps between tasks: the Winograd tasks' transformed tiles and
//! products, megabytes each, every step. Allocated afresh, each was cleared first (`vec!`
//! writes its zeros, on the task's thread), a pass over memory that the task's own writes then
//! repeat. Kept, a buffer holds whatever its last task left, so only a task that writes every
//! value before it reads it takes one.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};

thread_local! {
    /// The buffers this thread's tasks gave back, each as long as its capacity.
    static KEPT: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// `len` floats of this thread's kept scratch, their values unspecified (whatever the last
/// task left): given back to the thread when dropped. A task may hold several at once, and a
/// task inside a task takes buffers of its own.
pub(crate) struct Scratch {
    values: Vec<f32>,
    len: usize,
}

impl Scratch {
    /// The smallest kept buffer that holds `len` floats. Without one, the largest kept buffer
    /// is freed and a new one made (cleared once), so that a thread keeps no more buffers than
    /// its tasks hold at once.
    pub(crate) fn take(len: usize) -> Scratch {
        let values = KEPT.with_borrow_mut(|kept| {
            let fits = (0..kept.len()).filter(|&index| kept[index].len() >= len).min_by_key(|&index| kept[index].len());
            let index = fits.or_else(|| (0..kept.len()).max_by_key(|&index| kept[index].len()));
            index.map(|index| kept.swap_remove(index)).filter(|values| values.len() >= len)
        });
        let values = values.unwrap_or_else(|| {
            let mut values = vec![0.0f32; len];
            values.resize(values.capacity(), 0.0);
            values
        });
        Scratch { values, len }
    }
}

impl Deref for Scratch {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.values[..self.len]
    }
}

impl DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.values[..self.len]
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let values = std::mem::take(&mut self.values);
        // At thread exit the kept list may be gone already; the buffer is then freed.
        let _ = KEPT.try_with(|kept| kept.borrow_mut().push(values));
    }
}
