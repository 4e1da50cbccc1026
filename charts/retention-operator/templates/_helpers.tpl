{{/*
Names, labels and the RBAC rules shared by the templates.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "retention-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object name: fullnameOverride, or "<release>-<chart>",
or the release name alone when it already contains the chart name.
*/}}
{{- define "retention-operator.fullname" -}}
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

{{- define "retention-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select the operator pods; never change them after a release. */}}
{{- define "retention-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "retention-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* Labels on every object of the chart. */}}
{{- define "retention-operator.labels" -}}
{{ include "retention-operator.componentLabels" (list . "operator") }}
{{- end }}

{{/* The same labels for another component: (list $ "test"). Its pods are
not selected by the operator's selector labels. */}}
{{- define "retention-operator.componentLabels" -}}
{{- $ := index . 0 -}}
helm.sh/chart: {{ include "retention-operator.chart" $ }}
app.kubernetes.io/name: {{ include "retention-operator.name" $ }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
app.kubernetes.io/version: {{ $.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $.Release.Service }}
app.kubernetes.io/part-of: retention-stack
{{- end }}

{{- define "retention-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "retention-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "retention-operator.peeringName" -}}
{{- default (include "retention-operator.fullname" .) .Values.peering.name }}
{{- end }}

{{/* image: repository@digest, or repository:tag (tag defaults to appVersion). */}}
{{- define "retention-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
RBAC rules for what the operator calls in the namespaces it serves, and
nothing more. The operator never deletes: children go by owner-reference
garbage collection, so no rule holds the delete verb. Used by the ClusterRole
(cluster-wide) or by one Role per watched namespace.
*/}}
{{- define "retention-operator.namespacedRules" -}}
# RetentionStacks: watched by kopf, which keeps its progress in annotations (patch).
- apiGroups: ["retention.dev"]
  resources: ["retentionstacks"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["retention.dev"]
  resources: ["retentionstacks/status"]
  verbs: ["get", "patch"]
# Owner references with blockOwnerDeletion on the children need this.
- apiGroups: ["retention.dev"]
  resources: ["retentionstacks/finalizers"]
  verbs: ["update"]
# Children: server-side apply is a PATCH; create when they do not exist yet;
# list and watch (by the retention.dev/stack label) keep the operator's cache
# of them, which is how a child edited or deleted by hand is put back at once.
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["services", "configmaps"]
  verbs: ["get", "list", "watch", "create", "patch"]
# The Secrets named by a stack are read (and the generated Redis one created), never watched.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create", "patch"]
# Redis node addresses for the cluster bootstrap.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["networking.k8s.io"]
  resources: ["networkpolicies"]
  verbs: ["get", "list", "watch", "create", "patch"]
# Each stack's PodMonitor, when Prometheus Operator's CRDs are installed (not cached).
- apiGroups: ["monitoring.coreos.com"]
  resources: ["podmonitors"]
  verbs: ["get", "create", "patch"]
{{- end }}

{{/* kopf lists and watches CRDs to discover the resources it serves. */}}
{{- define "retention-operator.discoveryRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- end }}

{{/* kopf peering: each replica writes its keep-alive into the peering object's status. */}}
{{- define "retention-operator.peeringRules" -}}
- apiGroups: ["kopf.dev"]
  resources: [{{ .resource | quote }}]
  verbs: ["get", "list", "watch", "patch"]
{{- end }}

{{/*
The operator pod: shared by the Deployment (standalone) and the StatefulSet
(peering), so both run exactly the same container.
*/}}
{{- define "retention-operator.podTemplate" -}}
metadata:
  labels:
    {{- include "retention-operator.selectorLabels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  serviceAccountName: {{ include "retention-operator.serviceAccountName" . }}
  automountServiceAccountToken: true
  enableServiceLinks: false
  terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  containers:
    - name: operator
      image: {{ include "retention-operator.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      command: ["retention-operator"]
      env:
        - name: RETENTION_WATCH_NAMESPACES
          value: {{ join "," .Values.watchNamespaces | quote }}
        - name: RETENTION_METRICS_PORT
          value: {{ .Values.metrics.port | quote }}
        - name: RETENTION_HEALTH_PORT
          value: "8081"
        - name: RETENTION_BIND_ADDRESS
          value: "0.0.0.0"
        - name: RETENTION_AUTOSCALER_ENABLED
          value: {{ .Values.autoscaler.enabled | quote }}
        - name: RETENTION_AUTOSCALER_TICK_SECONDS
          value: {{ .Values.autoscaler.tickSeconds | quote }}
        {{- with .Values.autoscaler.prometheusUrl }}
        - name: RETENTION_PROMETHEUS_URL
          value: {{ . | quote }}
        {{- end }}
        - name: RETENTION_RETRY_SECONDS
          value: {{ .Values.retrySeconds | quote }}
        - name: RETENTION_LOG_FORMAT
          value: {{ .Values.logFormat | quote }}
        - name: RETENTION_OPERATOR_NAMESPACE
          valueFrom:
            fieldRef:
              fieldPath: metadata.namespace
        # kopf names this replica in the peering object after POD_ID.
        - name: POD_ID
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        - name: RETENTION_POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        {{- if .Values.peering.enabled }}
        - name: RETENTION_PEERING_NAME
          value: {{ include "retention-operator.peeringName" . | quote }}
        # Base priority; the operator subtracts the StatefulSet ordinal it
        # reads from RETENTION_POD_NAME, so no two replicas share a priority.
        - name: RETENTION_PEERING_PRIORITY
          value: {{ .Values.peering.basePriority | quote }}
        - name: RETENTION_PEERING_PRIORITY_FROM_POD_NAME
          value: "true"
        {{- end }}
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - name: metrics
          containerPort: {{ .Values.metrics.port }}
          protocol: TCP
        - name: healthz
          containerPort: 8081
          protocol: TCP
      livenessProbe:
        httpGet:
          path: /healthz
          port: healthz
        initialDelaySeconds: {{ .Values.livenessProbe.initialDelaySeconds }}
        periodSeconds: {{ .Values.livenessProbe.periodSeconds }}
        timeoutSeconds: {{ .Values.livenessProbe.timeoutSeconds }}
        failureThreshold: {{ .Values.livenessProbe.failureThreshold }}
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
  volumes:
    # The root filesystem is read-only; Python and kopf may still need a /tmp.
    - name: tmp
      emptyDir:
        medium: Memory
        sizeLimit: 16Mi
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
