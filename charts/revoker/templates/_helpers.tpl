{{/*
Chart name, truncated to 63 characters (the DNS label limit).
*/}}
{{- define "revoker.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the resources: fullnameOverride, else the release name with the chart name appended
unless the release name already contains it.
*/}}
{{- define "revoker.fullname" -}}
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

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "revoker.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: stable across upgrades (a Deployment's selector is immutable).
*/}}
{{- define "revoker.selectorLabels" -}}
app.kubernetes.io/name: {{ include "revoker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{/*
Standard labels for every resource.
*/}}
{{- define "revoker.labels" -}}
helm.sh/chart: {{ include "revoker.chart" . }}
app.kubernetes.io/name: {{ include "revoker.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: revoker
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Labels of the controller's resources (Deployment, pods, Service, ...): standard + component.
*/}}
{{- define "revoker.controllerLabels" -}}
{{ include "revoker.labels" . }}
app.kubernetes.io/component: controller
{{- end }}

{{/*
Labels of the CRDs.
*/}}
{{- define "revoker.crdLabels" -}}
{{ include "revoker.labels" . }}
app.kubernetes.io/component: crds
{{- end }}

{{/*
ServiceAccount name.
*/}}
{{- define "revoker.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "revoker.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Namespace of the leader-election Lease (and of its Role).
*/}}
{{- define "revoker.leaderElectionNamespace" -}}
{{- default .Release.Namespace .Values.leaderElection.namespace }}
{{- end }}

{{/*
Container image reference: repository, then @digest or :tag (default: appVersion).
*/}}
{{- define "revoker.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Checks of value combinations the schema cannot express. Included by the Deployment.
*/}}
{{- define "revoker.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount > 1 requires leaderElection.enabled=true: two active controllers could revoke the same credential twice" }}
{{- end }}
{{- end }}
