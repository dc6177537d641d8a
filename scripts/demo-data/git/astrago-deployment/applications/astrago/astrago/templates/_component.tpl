{{- /* DEMO STAND-IN: a Deployment and a Service for one component, from .Values.<component>. */ -}}
{{- define "standin.component" -}}
{{- $name := .name -}}
{{- $values := index .root.Values $name -}}
{{- $registry := .root.Values.global.imageRegistry | default $values.image.registry -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: astrago-{{ $name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    app.kubernetes.io/name: astrago-{{ $name }}
    app.kubernetes.io/part-of: astrago-demo-stand-in
spec:
  replicas: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: astrago-{{ $name }}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: astrago-{{ $name }}
    spec:
      containers:
        - name: {{ $name }}
          image: "{{ $registry }}/{{ $values.image.repository }}:{{ $values.image.tag }}"
          ports:
            - containerPort: {{ $values.port }}
---
apiVersion: v1
kind: Service
metadata:
  name: astrago-{{ $name }}
  namespace: {{ .root.Release.Namespace }}
spec:
  selector:
    app.kubernetes.io/name: astrago-{{ $name }}
  ports:
    - port: {{ $values.port }}
{{- end -}}
