//! OpenTelemetry trace context in bus headers (W3C `traceparent`/`tracestate`), so one call
//! is one trace across every node it crosses.

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry_sdk::propagation::TraceContextPropagator;

use crate::bus::Headers;

struct HeaderInjector<'a>(&'a mut Headers);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

struct HeaderExtractor<'a>(&'a Headers);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// Writes `cx`'s span context into `headers`.
pub fn inject(cx: &Context, headers: &mut Headers) {
    TraceContextPropagator::new().inject_context(cx, &mut HeaderInjector(headers));
}

/// Writes the current context's span into `headers` (nothing if there is no span).
pub fn inject_current(headers: &mut Headers) {
    inject(&Context::current(), headers);
}

/// The context carried by `headers`, to parent the receiver's spans.
pub fn extract(headers: &Headers) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}
