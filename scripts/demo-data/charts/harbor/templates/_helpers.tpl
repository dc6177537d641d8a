{{/* STAND-IN helpers: the real chart's fullname rule (the release name when it contains the chart name). */}}
{{- define "harbor.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}
{{- define "harbor.image" -}}{{ .repository }}:{{ .tag }}{{- end -}}
{{/* One workload and its Service (none when port is 0): dict "root" . "kind" "Deployment" "component" "core" "port" 80 "containers" (list (list name image) ...) */}}
{{- define "harbor.workload" -}}
{{- $name := printf "%s-%s" (include "harbor.fullname" .root) .component -}}
apiVersion: apps/v1
kind: {{ .kind }}
metadata:
  name: {{ $name }}
  labels: { app: harbor, component: {{ .component }}, release: {{ .root.Release.Name }} }
spec:
  replicas: 1
  {{- if eq .kind "StatefulSet" }}
  serviceName: {{ $name }}
  {{- end }}
  selector:
    matchLabels: { release: {{ .root.Release.Name }}, app: harbor, component: {{ .component }} }
  template:
    metadata:
      labels: { release: {{ .root.Release.Name }}, app: harbor, component: {{ .component }} }
    spec:
      containers:
      {{- range .containers }}
        - name: {{ index . 0 }}
          image: {{ index . 1 }}
      {{- end }}
{{- if .port }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  labels: { app: harbor, release: {{ .root.Release.Name }} }
spec:
  selector: { release: {{ .root.Release.Name }}, app: harbor, component: {{ .component }} }
  ports:
    - { name: http, port: {{ .port }} }
{{- end }}
{{- end -}}
