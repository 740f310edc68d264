// Whether the environment asks for traces, decided before the OpenTelemetry SDK is loaded: main.ts
// imports tracing.ts (the SDK and its OTLP exporter) only when this says yes.

/** Whether the environment asks for traces (an OTLP endpoint, and the exporter not set to none). */
export function tracingWanted(env: Record<string, string | undefined>): boolean {
  if (env.OTEL_SDK_DISABLED === 'true' || env.OTEL_TRACES_EXPORTER === 'none') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}
