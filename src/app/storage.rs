//! The autosaved weights, in this browser's IndexedDB: one record, replaced after every epoch.

use js_sys::{Date, Object, Reflect, Uint8Array};
use rexie::{ObjectStore, Rexie, TransactionMode};
use wasm_bindgen::{JsCast, JsValue};

use crate::train::ModelInfo;

const DATABASE: &str = "googlenet-web";
const STORE: &str = "weights";
const KEY: &str = "autosave";

/// An autosave as read back: the weights file, what it holds, and when it was written.
pub struct Autosave {
    pub bytes: Uint8Array,
    pub info: Option<ModelInfo>,
    pub saved_at: Date,
}

async fn open() -> Result<Rexie, String> {
    Rexie::builder(DATABASE)
        .version(1)
        .add_object_store(ObjectStore::new(STORE))
        .build()
        .await
        .map_err(|error| format!("browser storage is not available: {error}"))
}

pub async fn save(bytes: &Uint8Array, info: &ModelInfo) -> Result<(), String> {
    let database = open().await?;
    let record = Object::new();
    let _ = Reflect::set(&record, &"bytes".into(), bytes);
    let _ = Reflect::set(&record, &"info".into(), &serde_json::to_string(info).unwrap_or_default().into());
    let _ = Reflect::set(&record, &"savedAt".into(), &Date::new_0());
    let failed = |error: rexie::Error| format!("could not autosave the weights: {error}");
    let transaction = database.transaction(&[STORE], TransactionMode::ReadWrite).map_err(failed)?;
    transaction.store(STORE).map_err(failed)?.put(&record, Some(&KEY.into())).await.map_err(failed)?;
    transaction.done().await.map_err(failed)?;
    Ok(())
}

/// The autosave, if there is one.
pub async fn load() -> Result<Option<Autosave>, String> {
    let database = open().await?;
    let failed = |error: rexie::Error| format!("could not read the autosave: {error}");
    let transaction = database.transaction(&[STORE], TransactionMode::ReadOnly).map_err(failed)?;
    let Some(record) = transaction.store(STORE).map_err(failed)?.get(KEY.into()).await.map_err(failed)? else {
        return Ok(None);
    };
    let field = |name: &str| Reflect::get(&record, &name.into()).unwrap_or(JsValue::UNDEFINED);
    let Ok(bytes) = field("bytes").dyn_into::<Uint8Array>() else {
        return Err("the autosave in this browser is damaged; discard it".into());
    };
    let info = field("info").as_string().and_then(|json| serde_json::from_str(&json).ok());
    let saved_at = field("savedAt").dyn_into::<Date>().unwrap_or_else(|_| Date::new_0());
    Ok(Some(Autosave { bytes, info, saved_at }))
}

pub async fn discard() -> Result<(), String> {
    let database = open().await?;
    let failed = |error: rexie::Error| format!("could not discard the autosave: {error}");
    let transaction = database.transaction(&[STORE], TransactionMode::ReadWrite).map_err(failed)?;
    transaction.store(STORE).map_err(failed)?.delete(KEY.into()).await.map_err(failed)?;
    transaction.done().await.map_err(failed)?;
    Ok(())
}
