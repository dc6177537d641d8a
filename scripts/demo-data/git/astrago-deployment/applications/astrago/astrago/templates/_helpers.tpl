{{- /* DEMO STAND-IN helpers. */ -}}

{{- /* registry/repository:tag of a component's image; global.imageRegistry, when set, replaces the registry. */ -}}
{{- define "standin.image" -}}
{{- $image := index .root.Values .component "image" -}}
{{ default $image.registry .root.Values.global.imageRegistry }}/{{ $image.repository }}:{{ $image.tag }}
{{- end -}}

{{- /* A backend or frontend Deployment: name, component (values key), port. Env values as the values list them. */ -}}
{{- define "standin.service-deployment" -}}
{{- $values := index .root.Values .component -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    app.kubernetes.io/name: {{ .name }}
    app.kubernetes.io/part-of: astrago-demo-stand-in
spec:
  replicas: {{ $values.replicaCount }}
  selector:
    matchLabels:
      app.kubernetes.io/name: {{ .name }}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {{ .name }}
    spec:
      {{- with $values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      serviceAccountName: astrago-sa
      containers:
        - name: {{ .component }}
          image: "{{ include "standin.image" . }}"
          env:
          {{- range $values.env }}
            - name: {{ .name }}
              value: {{ .value | quote }}
          {{- end }}
          ports:
            - name: http
              containerPort: {{ .port }}
{{- end -}}

{{- /* A Service in front of one of those Deployments. */ -}}
{{- define "standin.service" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ .name }}
  namespace: {{ .root.Release.Namespace }}
spec:
  type: {{ .type | default "ClusterIP" }}
  selector:
    app.kubernetes.io/name: {{ .name }}
  ports:
    - name: http
      port: {{ .port }}
      targetPort: {{ .port }}
      {{- if .nodePort }}
      nodePort: {{ .nodePort }}
      {{- end }}
{{- end -}}
