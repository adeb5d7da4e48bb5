{{- define "stepgate.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "stepgate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "stepgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{ include "stepgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "stepgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "stepgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "stepgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "stepgate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "stepgate.masterKeySecret" -}}
{{- default (printf "%s-master-key" (include "stepgate.fullname" .)) .Values.masterKey.existingSecret -}}
{{- end -}}

{{/* Every rule the values must follow, checked before anything renders. */}}
{{- define "stepgate.validate" -}}
{{- if not .Values.publicURL -}}
{{- fail "publicURL is required: the https URL people and pipelines reach stepgate at" -}}
{{- end -}}
{{- if not (regexMatch "^https?://[^/]+" .Values.publicURL) -}}
{{- fail (printf "publicURL %q is not an http(s) URL" .Values.publicURL) -}}
{{- end -}}
{{- if not (has .Values.database.type (list "sqlite" "postgres")) -}}
{{- fail (printf "database.type %q is neither sqlite nor postgres" .Values.database.type) -}}
{{- end -}}
{{- if and (eq .Values.database.type "sqlite") (gt (int .Values.replicaCount) 1) -}}
{{- fail "replicaCount > 1 needs database.type: postgres (SQLite is one file on one volume)" -}}
{{- end -}}
{{- if and (eq .Values.database.type "postgres") (not .Values.database.postgres.existingSecret) -}}
{{- fail "database.type postgres needs database.postgres.existingSecret: a Secret holding the DSN" -}}
{{- end -}}
{{- if and (not .Values.masterKey.existingSecret) (not .Values.masterKey.value) -}}
{{- fail "masterKey.existingSecret or masterKey.value is required (head -c 32 /dev/urandom | base64)" -}}
{{- end -}}
{{- end -}}
