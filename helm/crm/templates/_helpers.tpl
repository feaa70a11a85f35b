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
{{- with $root.Values.kafka.security }}
- name: CRM__KAFKA__SECURITY__PROTOCOL
  value: {{ .protocol | quote }}
{{- if .tls.caSecret }}
- name: CRM__KAFKA__SECURITY__TLS__CA_FILE
  value: /var/run/secrets/crm/kafka-ca/ca.crt
{{- end }}
{{- if .tls.clientCertSecret }}
- name: CRM__KAFKA__SECURITY__TLS__CERT_FILE
  value: /var/run/secrets/crm/kafka-client/tls.crt
- name: CRM__KAFKA__SECURITY__TLS__KEY_FILE
  value: /var/run/secrets/crm/kafka-client/tls.key
{{- end }}
{{- if hasPrefix "sasl_" .protocol }}
- name: CRM__KAFKA__SECURITY__SASL__MECHANISM
  value: {{ .sasl.mechanism | quote }}
- name: CRM__KAFKA__SECURITY__SASL__USERNAME
  value: {{ .sasl.username | quote }}
- name: CRM__KAFKA__SECURITY__SASL__PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .sasl.passwordSecret }}
      key: password
{{- end }}
{{- end }}
{{- with $root.Values.redis }}
{{- if .urlSecret }}
- name: CRM__REDIS__URL
  valueFrom:
    secretKeyRef:
      name: {{ .urlSecret }}
      key: url
{{- else }}
- name: CRM__REDIS__URL
  value: {{ .url | quote }}
{{- end }}
{{- if .tls.caSecret }}
- name: CRM__REDIS__TLS__CA_FILE
  value: /var/run/secrets/crm/redis-ca/ca.crt
{{- end }}
{{- if .tls.clientCertSecret }}
- name: CRM__REDIS__TLS__CERT_FILE
  value: /var/run/secrets/crm/redis-client/tls.crt
- name: CRM__REDIS__TLS__KEY_FILE
  value: /var/run/secrets/crm/redis-client/tls.key
{{- end }}
{{- end }}
{{- if $c.database }}
- name: CRM__DATABASE__URL
  valueFrom:
    secretKeyRef:
      name: {{ $c.databaseSecret | default (printf "crm-%s-database" $name) }}
      key: {{ $root.Values.postgres.secretKeyRef.key }}
{{- end }}
{{- if eq $name "gateway" }}
- name: CRM__IDENTITY__SIGNING_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.secrets.gatewayIdentity }}
      key: signing-key
{{- else }}
- name: CRM__IDENTITY__CALLERS__GATEWAY__KEYS
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.secrets.gatewayIdentity }}
      key: public-key
{{- end }}
{{- if eq $name "customer" }}
- name: CRM__IDENTITY__SIGNING_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.secrets.customerIdentity }}
      key: signing-key
- name: CRM__SERVICES__PERMISSION
  value: "http://crm-permission:{{ $root.Values.components.permission.ports.grpc }}"
{{- end }}
{{- if eq $name "permission" }}
- name: CRM__IDENTITY__CALLERS__CUSTOMER__KEYS
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.secrets.customerIdentity }}
      key: public-key
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
{{- if $root.Values.tracing.tls.caSecret }}
- name: OTEL_EXPORTER_OTLP_CERTIFICATE
  value: /var/run/secrets/crm/otlp-ca/ca.crt
{{- end }}
{{- if $root.Values.tracing.tls.clientCertSecret }}
- name: OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE
  value: /var/run/secrets/crm/otlp-client/tls.crt
- name: OTEL_EXPORTER_OTLP_CLIENT_KEY
  value: /var/run/secrets/crm/otlp-client/tls.key
{{- end }}
{{- else }}
- name: OTEL_SDK_DISABLED
  value: "true"
{{- end }}
{{- range $k, $v := $c.env }}
- name: {{ $k }}
  value: {{ $v | quote }}
{{- end }}
{{- end -}}


{{/* The TLS Secrets named in values, as volumes (readable by the pod's group, 65532). The
     processes read them at start: a rotated certificate takes a rolling restart. */}}
{{- define "crm.tlsVolumes" -}}
{{- $v := . -}}
{{- range $name, $secret := dict "kafka-ca" $v.kafka.security.tls.caSecret "kafka-client" $v.kafka.security.tls.clientCertSecret "redis-ca" $v.redis.tls.caSecret "redis-client" $v.redis.tls.clientCertSecret "otlp-ca" $v.tracing.tls.caSecret "otlp-client" $v.tracing.tls.clientCertSecret }}
{{- if $secret }}
- name: tls-{{ $name }}
  secret: { secretName: {{ $secret }}, defaultMode: 0440 }
{{- end }}
{{- end }}
{{- end -}}

{{- define "crm.tlsMounts" -}}
{{- $v := . -}}
{{- range $name, $secret := dict "kafka-ca" $v.kafka.security.tls.caSecret "kafka-client" $v.kafka.security.tls.clientCertSecret "redis-ca" $v.redis.tls.caSecret "redis-client" $v.redis.tls.clientCertSecret "otlp-ca" $v.tracing.tls.caSecret "otlp-client" $v.tracing.tls.clientCertSecret }}
{{- if $secret }}
- { name: tls-{{ $name }}, mountPath: /var/run/secrets/crm/{{ $name }}, readOnly: true }
{{- end }}
{{- end }}
{{- end -}}
