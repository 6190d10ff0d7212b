"""/api/v1/custom-domains/: the team's custom domains, their DNS records, verify, default and
remove. The twins of accounts/domain_views.py: both call accounts/domain_services.py."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response

from accounts import domain_services
from accounts.access import Perm
from accounts.models import CustomDomain
from portal.api import TeamScopedMixin


class DnsRecordSerializer(serializers.Serializer):
    type = serializers.CharField(help_text="CNAME or TXT (A or AAAA when the portal runs on a bare address).")
    name = serializers.CharField()
    value = serializers.CharField()


class CustomDomainSerializer(serializers.ModelSerializer):
    """A custom domain with the two DNS records that make it work."""

    created_by = serializers.SlugRelatedField(slug_field="email", read_only=True)
    records = serializers.SerializerMethodField(help_text="Create these at your DNS provider, then verify.")

    class Meta:
        model = CustomDomain
        fields = [
            "domain",
            "kind",
            "status",
            "is_default",
            "records",
            "check_error",
            "checked_at",
            "verified_at",
            "created_at",
            "created_by",
        ]
        read_only_fields = fields

    @extend_schema_field(DnsRecordSerializer(many=True))
    def get_records(self, domain: CustomDomain) -> list[dict[str, str]]:
        return DnsRecordSerializer(domain_services.domain_records(domain), many=True).data


class CustomDomainCreateSerializer(serializers.Serializer):
    # Plain strings: the service checks both and names the field in its errors, as on the page.
    domain = serializers.CharField(max_length=300, allow_blank=True)
    kind = serializers.CharField(max_length=32, help_text="proxy or registry")


class CustomDomainViewSet(TeamScopedMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Host names of your own that customers use instead of the portal's. Every member reads;
    admins add, verify, choose the default and remove."""

    serializer_class = CustomDomainSerializer
    queryset = CustomDomain.objects.select_related("created_by")
    lookup_field = "domain"
    lookup_value_regex = "[^/]+"
    write_perm = Perm.ADMIN
    http_method_names = ["get", "post", "delete", "head", "options"]

    def get_object(self):
        name = domain_services.lookup_name(self.kwargs["domain"])
        return get_object_or_404(self.get_queryset(), domain=name)

    @extend_schema(request=CustomDomainCreateSerializer, responses={201: CustomDomainSerializer})
    def create(self, request):
        data = CustomDomainCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        domain = domain_services.domain_add(actor=request.actor, **data.validated_data)
        return Response(CustomDomainSerializer(domain).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=CustomDomainSerializer)
    @action(detail=True, methods=["post"])
    def verify(self, request, domain=None):
        """Look the TXT record up now; the answer is the domain with its new status and
        `check_error` (what was found instead, or which name server failed)."""
        row = domain_services.domain_verify(actor=request.actor, domain=self.get_object())
        return Response(CustomDomainSerializer(row).data)

    @extend_schema(request=None, responses=CustomDomainSerializer)
    @action(detail=True, methods=["post"], url_path="default")
    def make_default(self, request, domain=None):
        """Show this verified domain to customers for its kind; the kind's previous default stops being one."""
        row = domain_services.domain_set_default(actor=request.actor, domain=self.get_object())
        return Response(CustomDomainSerializer(row).data)

    def destroy(self, request, *args, **kwargs):
        domain_services.domain_remove(actor=request.actor, domain=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
