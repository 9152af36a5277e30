//! OpenTelemetry trace context in bus headers (W3C `traceparent`/`tracestate`), so one call
//! is one trace across every node it crosses: a publisher writes its current `tracing` span's
//! context, and a receiver makes the span of the work it does for the message a child of it.

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

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

/// Writes the current span into `headers`: the current `tracing` span when spans are
/// exported (a `tracing-opentelemetry` layer is installed), else OpenTelemetry's current
/// context; nothing when there is no span.
pub fn inject_current(headers: &mut Headers) {
    let cx = tracing::Span::current().context();
    if cx.span().span_context().is_valid() {
        inject(&cx, headers);
    } else {
        inject(&Context::current(), headers);
    }
}

/// The context carried by `headers`, to parent the receiver's spans.
pub fn extract(headers: &Headers) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// Makes `span` a child of the span carried in `headers` (nothing when they carry none).
pub fn follow(span: &tracing::Span, headers: &Headers) {
    let cx = extract(headers);
    if cx.span().span_context().is_valid() {
        // Fails only when the span is already started as a root; ours are new.
        let _ = span.set_parent(cx);
    }
}
