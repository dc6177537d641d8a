{{- /* DEMO STAND-IN: the release's base name (the release name when it already holds the chart name). */ -}}
{{- define "standin.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}{{ .Release.Name }}{{ else }}{{ printf "%s-%s" .Release.Name .Chart.Name }}{{ end -}}
{{- end -}}
