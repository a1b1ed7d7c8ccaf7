//! The files a user has loaded, paired into training and test splits. Files are recognised
//! by their IDX magic and counts, never by their names; a bad file is reported and leaves
//! everything loaded before it in place.

use super::idx::{parse_idx, IdxFile, IdxKind};
use super::IMAGE_SIDE;

/// Fashion-MNIST's test split has 10,000 items; any other paired count is a training split.
pub const TEST_SPLIT_SIZE: usize = 10_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitName {
    Train,
    Test,
}

impl SplitName {
    fn of_count(count: usize) -> Self {
        if count == TEST_SPLIT_SIZE { Self::Test } else { Self::Train }
    }
}

/// Images (28×28 `u8`, back to back) with their labels, borrowed from the [`Loader`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Split<'a> {
    pub images: &'a [u8],
    pub labels: &'a [u8],
}

impl<'a> Split<'a> {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The first `count` images and their labels (all of them when there are fewer).
    pub fn first(&self, count: usize) -> Split<'a> {
        let count = count.min(self.len());
        Split { images: &self.images[..count * IMAGE_SIDE * IMAGE_SIDE], labels: &self.labels[..count] }
    }

    /// The 28×28 pixels of image `index`.
    pub fn image(&self, index: usize) -> &'a [u8] {
        let size = IMAGE_SIDE * IMAGE_SIDE;
        &self.images[index * size..(index + 1) * size]
    }

    /// How many images of each class.
    pub fn class_counts(&self) -> [usize; 10] {
        let mut counts = [0; 10];
        for &label in self.labels {
            counts[usize::from(label)] += 1;
        }
        counts
    }
}

/// An owned split: images (28×28 `u8`, back to back) and their labels, as the training worker
/// keeps them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dataset {
    images: Vec<u8>,
    labels: Vec<u8>,
}

impl Dataset {
    /// `None` unless there is exactly one 28×28 image per label and every label is a class.
    pub fn new(images: Vec<u8>, labels: Vec<u8>) -> Option<Self> {
        let whole = images.len() == labels.len() * IMAGE_SIDE * IMAGE_SIDE;
        (whole && labels.iter().all(|&label| label < 10)).then_some(Self { images, labels })
    }

    pub fn split(&self) -> Split<'_> {
        Split { images: &self.images, labels: &self.labels }
    }
}

impl Split<'_> {
    pub fn to_dataset(&self) -> Dataset {
        Dataset { images: self.images.to_vec(), labels: self.labels.to_vec() }
    }
}

/// What happened to one file the user gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileReport {
    pub name: String,
    /// What the file was recognised as, or why it was refused.
    pub outcome: Result<(IdxKind, usize), String>,
}

/// Every file given so far, and the splits they make. Not `Clone`: it holds the whole
/// dataset (47 MB for Fashion-MNIST), which is read in place, never copied.
#[derive(Debug, Default)]
pub struct Loader {
    images: Vec<IdxFile>,
    labels: Vec<IdxFile>,
    reports: Vec<FileReport>,
}

impl Loader {
    /// One report per file name, the latest attempt for each, in arrival order.
    pub fn reports(&self) -> &[FileReport] {
        &self.reports
    }

    /// Reads one file. A good file replaces an earlier one of the same kind and count; a bad
    /// one changes nothing but its report.
    pub fn add(&mut self, name: &str, bytes: &[u8]) -> FileReport {
        let outcome = match parse_idx(bytes, name.ends_with(".gz")) {
            Ok(file) => {
                let recognised = (file.kind, file.count);
                let files = match file.kind {
                    IdxKind::Images => &mut self.images,
                    IdxKind::Labels => &mut self.labels,
                };
                files.retain(|old| old.count != file.count);
                files.push(file);
                Ok(recognised)
            }
            Err(error) => Err(error.to_string()),
        };
        self.report(name, outcome)
    }

    /// Records a file that could not even be read (the browser failed to hand over its bytes).
    pub fn refuse(&mut self, name: &str, message: String) -> FileReport {
        self.report(name, Err(message))
    }

    fn report(&mut self, name: &str, mut outcome: Result<(IdxKind, usize), String>) -> FileReport {
        // A bad file replaces the line of a good one of the same name: say that its data stays.
        let earlier = self.reports.iter().find(|earlier| earlier.name == name).and_then(|earlier| earlier.outcome.clone().ok());
        if let (Err(message), Some((kind, count))) = (&mut outcome, earlier) {
            let files = match kind {
                IdxKind::Images => &self.images,
                IdxKind::Labels => &self.labels,
            };
            if files.iter().any(|file| file.count == count) {
                let what = match kind {
                    IdxKind::Images => "images",
                    IdxKind::Labels => "labels",
                };
                message.push_str(&format!("; the {name} loaded before ({count} {what}) stays loaded"));
            }
        }
        let report = FileReport { name: name.to_owned(), outcome };
        self.reports.retain(|earlier| earlier.name != name);
        self.reports.push(report.clone());
        report
    }

    /// The split paired from images and labels of the same count, if both are loaded.
    pub fn split(&self, name: SplitName) -> Option<Split<'_>> {
        self.images.iter().filter(|images| SplitName::of_count(images.count) == name).find_map(|images| {
            let labels = self.labels.iter().find(|labels| labels.count == images.count)?;
            Some(Split { images: &images.data, labels: &labels.data })
        })
    }

    /// Image or label files that have no partner of the same count, as messages for the page.
    pub fn unpaired(&self) -> Vec<String> {
        let partnerless = |files: &[IdxFile], others: &[IdxFile], what: &str, needs: &str| {
            files
                .iter()
                .filter(|file| !others.iter().any(|other| other.count == file.count))
                .map(|file| format!("{} {what} have no {needs} file with the same count", file.count))
                .collect::<Vec<_>>()
        };
        let mut messages = partnerless(&self.images, &self.labels, "images", "label");
        messages.extend(partnerless(&self.labels, &self.images, "labels", "image"));
        messages
    }
}
