{{/* Names, labels and the parts every callmesh workload shares. */}}

{{- define "callmesh.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "callmesh.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "callmesh.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "callmesh.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one role: (dict "root" $ "role" "edge"). */}}
{{- define "callmesh.selector" -}}
app.kubernetes.io/name: {{ include "callmesh.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{- define "callmesh.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "callmesh.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "callmesh.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The NATS URL the nodes connect to. */}}
{{- define "callmesh.natsUrl" -}}
{{- if .Values.nats.enabled -}}
{{- $name := printf "%s-nats" (include "callmesh.fullname" .) -}}
{{- $urls := list -}}
{{- range $i := until (int .Values.nats.replicas) -}}
{{- $urls = append $urls (printf "nats://%s-%d.%s.%s.svc:4222" $name $i $name $.Release.Namespace) -}}
{{- end -}}
{{- join "," $urls -}}
{{- else -}}
{{- required "nats.url is required when nats.enabled is false" .Values.nats.url -}}
{{- end -}}
{{- end -}}

{{/* The callmesh container of one role: (dict "root" $ "role" "edge" "values" .Values.edge
     "hostNetwork" true "sip" true "advertise" "..." "env" (list ...)). */}}
{{- define "callmesh.container" -}}
{{- $root := .root -}}
{{- $v := .values -}}
- name: callmesh
  image: {{ include "callmesh.image" $root }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  args: [{{ .role | quote }}, "--config", "/etc/callmesh/callmesh.toml"]
  env:
    - name: POD_IP
      valueFrom: {fieldRef: {fieldPath: status.podIP}}
    - name: CALLMESH_NODE_ID
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - name: CALLMESH_NODE_DRAIN_TIMEOUT_SECS
      value: {{ $v.drainTimeoutSeconds | quote }}
    - name: CALLMESH_HTTP_LISTEN
      value: "$(POD_IP):{{ $v.httpPort }}"
    - name: CALLMESH_KUBE_POD
      valueFrom: {fieldRef: {fieldPath: metadata.name}}
    - name: CALLMESH_KUBE_NAMESPACE
      valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
    - name: CALLMESH_KUBE_NODE
      valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
    - name: RUST_LOG
      value: {{ $root.Values.config.logLevel | quote }}
    {{- with $root.Values.otel.endpoint }}
    - name: OTEL_EXPORTER_OTLP_ENDPOINT
      value: {{ . | quote }}
    - name: OTEL_EXPORTER_OTLP_PROTOCOL
      value: {{ $root.Values.otel.protocol | quote }}
    {{- end }}
    {{- with $root.Values.otel.resourceAttributes }}
    - name: OTEL_RESOURCE_ATTRIBUTES
      value: {{ . | quote }}
    {{- end }}
    {{- range .env }}
    - {{ toYaml . | nindent 6 | trim }}
    {{- end }}
  ports:
    - {name: http, containerPort: {{ $v.httpPort }}, protocol: TCP}
    {{- if .grpc }}
    - {name: grpc, containerPort: {{ $v.grpcPort }}, protocol: TCP}
    {{- end }}
    {{- if .sip }}
    - {name: sip-udp, containerPort: {{ $v.sipPort }}, protocol: UDP}
    - {name: sip-tcp, containerPort: {{ $v.sipPort }}, protocol: TCP}
    {{- end }}
  startupProbe:
    httpGet: {path: /readyz, port: http}
    periodSeconds: 2
    failureThreshold: {{ div $root.Values.probes.startupSeconds 2 }}
  readinessProbe:
    httpGet: {path: /readyz, port: http}
    periodSeconds: {{ $root.Values.probes.readinessPeriodSeconds }}
    failureThreshold: 1
  livenessProbe:
    httpGet: {path: /healthz, port: http}
    periodSeconds: {{ $root.Values.probes.livenessPeriodSeconds }}
    failureThreshold: {{ $root.Values.probes.livenessFailureThreshold }}
  lifecycle:
    preStop:
      # Stop taking work and wait until the calls and transactions in progress end (at most
      # drainTimeoutSeconds); SIGTERM then finds nothing left to do.
      exec:
        command: ["/usr/local/bin/callmesh", "drain", "--config", "/etc/callmesh/callmesh.toml"]
  resources:
    {{- toYaml $v.resources | nindent 4 }}
  securityContext:
    {{- toYaml $root.Values.securityContext | nindent 4 }}
  volumeMounts:
    - {name: config, mountPath: /etc/callmesh, readOnly: true}
    {{- range .mounts }}
    - {{ toYaml . | nindent 6 | trim }}
    {{- end }}
{{- end -}}

{{/* The pod spec parts every callmesh workload shares: (dict "root" $ "values" .Values.edge). */}}
{{- define "callmesh.podCommon" -}}
{{- $root := .root -}}
{{- $v := .values -}}
serviceAccountName: {{ include "callmesh.serviceAccountName" $root }}
# Kubernetes' service links would put CALLMESH_SERVICE_HOST and the like in the environment.
enableServiceLinks: false
# The drain (preStop) may take drainTimeoutSeconds; SIGTERM gets 30 s more.
terminationGracePeriodSeconds: {{ add $v.drainTimeoutSeconds 30 }}
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  - name: config
    secret:
      secretName: {{ include "callmesh.fullname" $root }}-config
  {{- range .volumes }}
  - {{ toYaml . | nindent 4 | trim }}
  {{- end }}
{{- end -}}

{{/* Pod annotations: the role's, Prometheus scraping, and the config's checksum (a changed
     configuration rolls the pods). */}}
{{- define "callmesh.podAnnotations" -}}
{{- $root := .root -}}
checksum/config: {{ include (print $root.Template.BasePath "/config.yaml") $root | sha256sum }}
{{- if $root.Values.metrics.podAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .values.httpPort | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- with .values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end -}}
