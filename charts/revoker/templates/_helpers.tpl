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
{{- with include "revoker.commonLabels" . | fromYaml }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
commonLabels over global.commonLabels.
*/}}
{{- define "revoker.commonLabels" -}}
{{- $global := (.Values.global | default dict).commonLabels | default dict }}
{{- toYaml (merge (deepCopy (.Values.commonLabels | default dict)) $global) }}
{{- end }}

{{/*
global.imagePullSecrets followed by imagePullSecrets, without repeats.
*/}}
{{- define "revoker.imagePullSecrets" -}}
{{- $global := (.Values.global | default dict).imagePullSecrets | default list }}
{{- with concat $global (.Values.imagePullSecrets | default list) | uniq }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{/*
priorityClassName, else global.priorityClassName.
*/}}
{{- define "revoker.priorityClassName" -}}
{{- .Values.priorityClassName | default (.Values.global | default dict).priorityClassName | default "" }}
{{- end }}

{{/*
The --log-level filter: log.level, else global.logLevel (a filter, or a klog verbosity number
as cert-manager's: 0-3 info, 4-5 debug, 6+ trace), else info.
*/}}
{{- define "revoker.logLevel" -}}
{{- $global := (.Values.global | default dict).logLevel }}
{{- if .Values.log.level }}
{{- .Values.log.level }}
{{- else if kindIs "string" $global }}
{{- $global | default "info" }}
{{- else if or (kindIs "float64" $global) (kindIs "int64" $global) (kindIs "int" $global) }}
{{- $v := int $global }}
{{- if ge $v 6 }}trace{{ else if ge $v 4 }}debug{{ else }}info{{ end }}
{{- else }}
{{- "info" }}
{{- end }}
{{- end }}

{{/*
Namespace of ClusterRevocationProvider credential Secrets.
*/}}
{{- define "revoker.clusterResourceNamespace" -}}
{{- default .Release.Namespace .Values.clusterResourceNamespace }}
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
The controller Deployments: one per entry of sharding.shards, or a single one (an entry with no
name) acting on every revocation.
*/}}
{{- define "revoker.shards" -}}
{{- if .Values.sharding.shards }}
{{- toYaml .Values.sharding.shards }}
{{- else }}
- {}
{{- end }}
{{- end }}

{{/*
The Lease of a shard (dict root, shard): leaderElection.leaseName, with "-<shard name>" per shard.
*/}}
{{- define "revoker.leaseName" -}}
{{- if .shard.name }}
{{- printf "%s-%s" .root.Values.leaderElection.leaseName .shard.name }}
{{- else }}
{{- .root.Values.leaderElection.leaseName }}
{{- end }}
{{- end }}

{{/*
Checks of value combinations the schema cannot express. Included by the Deployment.
*/}}
{{- define "revoker.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount > 1 requires leaderElection.enabled=true: two active controllers could revoke the same credential twice" }}
{{- end }}
{{- if and .Values.sharding.shards (not .Values.leaderElection.enabled) }}
{{- fail "sharding.shards requires leaderElection.enabled=true: each shard runs under its own Lease" }}
{{- end }}
{{- $names := list }}
{{- range .Values.sharding.shards }}
{{- if has .name $names }}
{{- fail (printf "sharding.shards: the shard name %q is used twice; each shard needs its own name (and Lease)" .name) }}
{{- end }}
{{- $names = append $names .name }}
{{- end }}
{{- if hasKey .Values "securityContext" }}
{{- fail "securityContext is not a value of this chart (charts disagree on whether it means the pod or the container): set the container's with containerSecurityContext and the pod's with podSecurityContext" }}
{{- end }}
{{- if hasKey .Values.rbac "aggregateClusterRoles" }}
{{- fail "rbac.aggregateClusterRoles was split: rbac.aggregateToView (default true) creates the view role, rbac.aggregateToEdit (default false) the edit role" }}
{{- end }}
{{- if and .Values.watchNamespaces .Values.clusterResourceNamespace }}
{{- fail "clusterResourceNamespace has no effect with watchNamespaces: a namespace-scoped operator uses no ClusterRevocationProvider" }}
{{- end }}
{{- end }}

{{/*
The controller's rules on namespaced objects: the ClusterRole's first rules, and the whole Role of
each watched namespace in namespace-scoped mode.
*/}}
{{- define "revoker.namespacedRules" -}}
# Revocations: watch them, create the runs of triggered ones, delete finished ones after
# spec.ttlSecondsAfterFinished and runs beyond the history limits.
- apiGroups: ["revoker.dev"]
  resources: ["jwksrevocations", "authmethodrevocations", "tokenrevocations"]
  verbs: ["get", "list", "watch", "create", "delete"]
# Revocation status: phase, conditions, attempts, provider result.
- apiGroups: ["revoker.dev"]
  resources: ["jwksrevocations/status", "authmethodrevocations/status", "tokenrevocations/status"]
  verbs: ["get", "patch", "update"]
# Providers: read-only, except their status (Ready condition after the credential check).
- apiGroups: ["revoker.dev"]
  resources: ["revocationproviders"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["revoker.dev"]
  resources: ["revocationproviders/status"]
  verbs: ["get", "patch", "update"]
# Credentials and token Secrets, read by name only: no list/watch, so Secret data is never cached.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get"]
# ConfigMaps holding identifiers a rotation wrote (spec.…IdFrom.configMapKeyRef), by name only.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get"]
# Events on revocations and providers.
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
