{{/* Chart name, overridable. */}}
{{- define "kubevirt-imds.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Object-name prefix: <release>-<chart>, or the release name if it already contains the chart name. */}}
{{- define "kubevirt-imds.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name of the webhook's Deployment, Service and ServiceAccount. */}}
{{- define "kubevirt-imds.webhookName" -}}
{{- printf "%s-webhook" (include "kubevirt-imds.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Name of the serving Certificate and of its Secret. */}}
{{- define "kubevirt-imds.tlsName" -}}
{{- printf "%s-webhook-tls" (include "kubevirt-imds.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Name of the chart-made CA (Certificate, Secret and CA Issuer). */}}
{{- define "kubevirt-imds.caName" -}}
{{- printf "%s-ca" (include "kubevirt-imds.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Name of the webhook configuration ConfigMap. */}}
{{- define "kubevirt-imds.configName" -}}
{{- printf "%s-webhook-config" (include "kubevirt-imds.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "kubevirt-imds.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kubevirt-imds.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kubevirt-imds
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels that identify the release's objects (no version: they appear in selectors). */}}
{{- define "kubevirt-imds.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubevirt-imds.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Selector labels of the webhook pods. */}}
{{- define "kubevirt-imds.webhookSelectorLabels" -}}
{{ include "kubevirt-imds.selectorLabels" . }}
app.kubernetes.io/component: webhook
{{- end }}

{{/* Labels of a component's objects: common labels plus the component. */}}
{{- define "kubevirt-imds.componentLabels" -}}
{{ include "kubevirt-imds.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* A metadata `annotations:` block (indented for metadata, with a leading newline): the common annotations plus .extra; nothing when both are empty. */}}
{{- define "kubevirt-imds.annotations" -}}
{{- $all := merge (dict) (.extra | default dict) (.root.Values.commonAnnotations | default dict) }}
{{- with $all }}
{{ printf "annotations:\n%s" (toYaml . | indent 2) | indent 2 }}
{{- end }}
{{- end }}

{{/* Image reference: repository:tag, tag defaulting to the chart's appVersion. */}}
{{- define "kubevirt-imds.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) }}
{{- end }}

{{/* DNS name of the webhook Service inside the cluster. */}}
{{- define "kubevirt-imds.serviceHost" -}}
{{- printf "%s.%s.svc" (include "kubevirt-imds.webhookName" .) .Release.Namespace }}
{{- end }}

{{/* Namespace selector shared by both webhook configurations. */}}
{{- define "kubevirt-imds.namespaceSelector" -}}
{{- $excluded := uniq (append (.Values.webhook.namespaceSelector.excludeNamespaces | default list) .Release.Namespace) -}}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values:
      {{- toYaml $excluded | nindent 6 }}
  {{- with .Values.webhook.namespaceSelector.matchExpressions }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/* The cert-manager CA-injection annotation for the webhook configurations. */}}
{{- define "kubevirt-imds.injectCA" -}}
cert-manager.io/inject-ca-from: {{ printf "%s/%s" .Release.Namespace (include "kubevirt-imds.tlsName" .) }}
{{- end }}

{{/* The webhook's configuration file, built one-to-one from the values. */}}
{{- define "kubevirt-imds.webhookConfig" -}}
{{- $v := .Values }}
{{- $sidecar := dict
  "image" (include "kubevirt-imds.image" (dict "image" $v.sidecar.image "root" .))
  "imagePullPolicy" $v.sidecar.image.pullPolicy
  "nativeSidecar" $v.sidecar.nativeSidecar
  "resources" $v.sidecar.resources
  "logLevel" $v.sidecar.logLevel
  "allowedAnnotations" $v.sidecar.allowedAnnotations
  "rateLimit" (dict "requestsPerSecond" $v.sidecar.rateLimit.requestsPerSecond "burst" $v.sidecar.rateLimit.burst)
  "hopLimit" $v.sidecar.hopLimit
  "sessionsRequired" $v.sidecar.sessionsRequired
  "network" (dict
    "bridgeNames" $v.sidecar.network.bridgeNames
    "arpResponder" $v.sidecar.network.arpResponder
    "bridgeIntercept" $v.sidecar.network.bridgeIntercept
    "passt" $v.sidecar.network.passt
    "guestRouteIdleSeconds" $v.sidecar.network.guestRouteIdleSeconds) }}
{{- $config := dict
  "sidecar" $sidecar
  "token" (dict "expirationSeconds" $v.token.expirationSeconds "audiences" $v.token.audiences)
  "vendorData" $v.vendorData
  "vmSerialInjection" $v.vmSerialInjection.enabled
  "maxRequestBytes" $v.webhook.maxRequestBytes }}
{{- toYaml $config }}
{{- end }}
