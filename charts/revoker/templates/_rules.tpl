{{/*
The alert groups of the PrometheusRule; deploy/monitoring/revoker-rules.yaml is this rendered with
the default values. Prometheus' own template braces are escaped from Helm with {{`...`}}.
*/}}
{{- define "revoker.ruleGroups" -}}
{{- $v := .Values.prometheusRule -}}
groups:
  - name: revoker
    rules:
    {{- if $v.rules }}
    {{- toYaml $v.rules | nindent 6 }}
    {{- else }}
      - alert: RevokerRevocationFailed
        expr: max by (namespace, name, kind, provider, reason) (revoker_revocation_info{phase="Failed", dry_run="false"}) == 1
        labels:
          severity: critical
          {{- with $v.alertLabels }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
        annotations:
          summary: {{`"{{ $labels.kind }} {{ $labels.namespace }}/{{ $labels.name }} failed: {{ $labels.reason }}"`}}
          description: {{`"The {{ $labels.kind }} {{ $labels.namespace }}/{{ $labels.name }} (provider {{ $labels.provider }}) failed with reason {{ $labels.reason }}: the credential may still be valid. Read the message with kubectl describe and revoke it by hand or recreate the object."`}}
          runbook_url: {{ printf "%s#revokerrevocationfailed" $v.runbookBaseUrl | quote }}
      - alert: RevokerRevocationStuck
        expr: max by (namespace, name, kind, provider, phase, reason) (revoker_revocation_info{phase=~"Pending|Running"}) == 1
        for: {{ $v.stuckMinutes }}m
        labels:
          severity: warning
          {{- with $v.alertLabels }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
        annotations:
          summary: {{ printf "\"{{ $labels.kind }} {{ $labels.namespace }}/{{ $labels.name }} is {{ $labels.phase }} ({{ $labels.reason }}) for more than %v minutes\"" $v.stuckMinutes }}
          description: {{`"The {{ $labels.kind }} {{ $labels.namespace }}/{{ $labels.name }} (provider {{ $labels.provider }}) has not finished: phase {{ $labels.phase }}, reason {{ $labels.reason }}. Check the provider's Ready condition and the operator's log."`}}
          runbook_url: {{ printf "%s#revokerrevocationstuck" $v.runbookBaseUrl | quote }}
      - alert: RevokerProviderNotReady
        expr: max by (namespace, name, kind, provider) (revoker_provider_ready) == 0
        for: {{ $v.providerNotReadyMinutes }}m
        labels:
          severity: warning
          {{- with $v.alertLabels }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
        annotations:
          summary: {{ printf "\"{{ $labels.kind }} {{ if $labels.namespace }}{{ $labels.namespace }}/{{ end }}{{ $labels.name }} is not Ready for more than %v minutes\"" $v.providerNotReadyMinutes }}
          description: {{`"The {{ $labels.kind }} {{ if $labels.namespace }}{{ $labels.namespace }}/{{ end }}{{ $labels.name }} ({{ $labels.provider }}) is not Ready: revocations that use it wait as Pending. Its Ready condition gives the reason (credentials Secret, permissions, reachability)."`}}
          runbook_url: {{ printf "%s#revokerprovidernotready" $v.runbookBaseUrl | quote }}
      - alert: RevokerRetriesHigh
        expr: sum by (provider) (rate(revoker_retries_total[5m])) > {{ $v.retryRateThreshold }}
        for: {{ $v.retryRateMinutes }}m
        labels:
          severity: warning
          {{- with $v.alertLabels }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
        annotations:
          summary: {{`"Revoker retries {{ $labels.provider }} calls at {{ $value | humanize }}/s"`}}
          description: {{ printf "\"Transient errors from provider {{ $labels.provider }} schedule retries faster than %v/s for %v minutes; see revoker_retries_total by reason and the provider's status.\"" $v.retryRateThreshold $v.retryRateMinutes }}
          runbook_url: {{ printf "%s#revokerretrieshigh" $v.runbookBaseUrl | quote }}
    {{- end }}
    {{- with $v.additionalRules }}
    {{- toYaml . | nindent 6 }}
    {{- end }}
{{- end }}
