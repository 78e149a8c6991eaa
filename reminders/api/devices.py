"""Devices API (SPEC §7): the app registers its push token and drops it at sign-out.

Any signed-in user: patients get reminders on their phones, clinicians alert notifications.
"""

from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from reminders.serializers.devices import DeviceRegisterSerializer, DeviceSerializer
from reminders.services.devices import device_delete, device_register


class DeviceListView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=DeviceRegisterSerializer,
        responses={
            201: OpenApiResponse(
                DeviceSerializer, description="Registered: new, or new to you (moved from another sign-in)."
            ),
            200: OpenApiResponse(DeviceSerializer, description="Already yours: platform updated, reactivated."),
        },
        description="Upserts by token. A token registered by another user moves to you and stops reaching them.",
    )
    def post(self, request):
        serializer = DeviceRegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        device, created = device_register(user=request.user, **serializer.validated_data)
        return Response(
            DeviceSerializer(device).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class DeviceDetailView(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={204: None}, description="Your own device only; anyone else's is a 404.")
    def delete(self, request, device_id):
        device_delete(user=request.user, device_id=device_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("devices/", DeviceListView.as_view(), name="devices"),
    path("devices/<uuid:device_id>/", DeviceDetailView.as_view(), name="device-detail"),
]
