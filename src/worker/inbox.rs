//! Messages that arrive while nobody waits, kept until someone asks: a worker's `onmessage`
//! pushes, an async loop takes them one at a time, in order.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

#[derive(Clone, Default)]
pub(super) struct Inbox {
    inner: Rc<RefCell<State>>,
}

#[derive(Default)]
struct State {
    messages: VecDeque<JsValue>,
    /// Resolves the promise `next` waits on.
    waiting: Option<Function>,
}

impl Inbox {
    pub fn push(&self, message: JsValue) {
        let waiting = {
            let mut state = self.inner.borrow_mut();
            state.messages.push_back(message);
            state.waiting.take()
        };
        if let Some(resolve) = waiting {
            let _ = resolve.call0(&JsValue::NULL);
        }
    }

    /// The oldest message, once there is one.
    pub async fn next(&self) -> JsValue {
        loop {
            if let Some(message) = self.pop() {
                return message;
            }
            self.arrival(None).await;
        }
    }

    /// The oldest message, or `None` when none comes within `ms` milliseconds.
    pub async fn next_within(&self, ms: f64) -> Option<JsValue> {
        let deadline = js_sys::Date::now() + ms;
        loop {
            if let Some(message) = self.pop() {
                return Some(message);
            }
            let left = deadline - js_sys::Date::now();
            if left <= 0.0 {
                return None;
            }
            self.arrival(Some(left)).await;
        }
    }

    fn pop(&self) -> Option<JsValue> {
        self.inner.borrow_mut().messages.pop_front()
    }

    /// Returns when a message is pushed, or after `timeout` milliseconds. A late timer or a
    /// late push resolves a settled promise: nothing happens.
    async fn arrival(&self, timeout: Option<f64>) {
        let inner = self.inner.clone();
        let arrived = Promise::new(&mut |resolve, _| {
            if let Some(ms) = timeout {
                // setTimeout of the global scope: a page's window and a worker's scope alike.
                if let Ok(set_timeout) = Reflect::get(&js_sys::global(), &"setTimeout".into()) {
                    let _ = set_timeout.unchecked_into::<Function>().call2(&JsValue::NULL, &resolve, &ms.into());
                }
            }
            inner.borrow_mut().waiting = Some(resolve);
        });
        let _ = JsFuture::from(arrived).await;
    }
}
