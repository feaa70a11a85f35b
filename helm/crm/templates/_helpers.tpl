{{/* The settings of one component: the shared defaults with its own overrides on top. */}}
{{- define "crm.settings" -}}
{{- $root := index . 0 -}}
{{- $component := index . 1 -}}
{{- toYaml (mergeOverwrite (deepCopy $root.Values.defaults) (deepCopy $component)) -}}
{{- end -}}

{{- define "crm.image" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $tag := $root.Values.image.tag | default $root.Chart.AppVersion -}}
{{- if $root.Values.image.registry -}}
{{ $root.Values.image.registry }}/{{ $name }}:{{ $tag }}
{{- else -}}
crm/{{ $name }}:{{ $tag }}
{{- end -}}
{{- end -}}

{{- define "crm.labels" -}}
app.kubernetes.io/name: crm-{{ index . 1 }}
app.kubernetes.io/component: {{ index . 1 }}
app.kubernetes.io/part-of: crm
app.kubernetes.io/instance: {{ (index . 0).Release.Name }}
app.kubernetes.io/managed-by: {{ (index . 0).Release.Service }}
helm.sh/chart: crm-{{ (index . 0).Chart.Version }}
{{- end -}}

{{/* Environment every container of a component gets. */}}
{{- define "crm.env" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $c := index . 2 -}}
- name: CRM_ENVIRONMENT
  value: production
- name: CRM__KAFKA__BROKERS
  value: {{ $root.Values.kafka.brokers | quote }}
- name: CRM__REDIS__URL
  value: {{ $root.Values.redis.url | quote }}
{{- if $c.database }}
- name: CRM__DATABASE__URL
  valueFrom:
    secretKeyRef:
      name: {{ $c.databaseSecret | default (printf "crm-%s-database" $name) }}
      key: {{ $root.Values.postgres.secretKeyRef.key }}
{{- end }}
{{- if eq $name "permission" }}
- name: CRM__AUTH__KEY_ENCRYPTION_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.secrets.permissionKeys }}
      key: key-encryption-key
{{- end }}
- name: CRM__SERVER__DRAIN_DELAY_MS
  value: {{ $root.Values.shutdown.drainDelayMs | quote }}
- name: CRM__SERVER__SHUTDOWN_GRACE_SECS
  value: {{ $root.Values.shutdown.graceSecs | quote }}
{{- if eq $name "gateway" }}
- name: CRM__SERVICES__CUSTOMER
  value: "http://crm-customer:{{ $root.Values.components.customer.ports.grpc }}"
- name: CRM__SERVICES__PERMISSION
  value: "http://crm-permission:{{ $root.Values.components.permission.ports.grpc }}"
- name: CRM__AUTH__JWKS_URL
  value: "http://crm-permission:{{ $root.Values.components.permission.ports.http }}/.well-known/jwks.json"
{{- end }}
{{- if $root.Values.tracing.enabled }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $root.Values.tracing.endpoint | quote }}
- name: OTEL_TRACES_SAMPLER
  value: {{ $root.Values.tracing.sampler | quote }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $root.Values.tracing.samplerArg | quote }}
{{- else }}
- name: OTEL_SDK_DISABLED
  value: "true"
{{- end }}
{{- range $k, $v := $c.env }}
- name: {{ $k }}
  value: {{ $v | quote }}
{{- end }}
{{- end -}}
