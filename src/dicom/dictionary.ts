/**
 * Compact DICOM data dictionary: the keywords FIONA's series JSON and classification rules use, plus the
 * common patient/study/series/equipment/image/MR/CT/enhanced-MR elements. Tags and VRs were taken from
 * the DICOM standard (as packaged in dcmjs); US-or-SS elements are listed as US and PixelData as OW.
 * Implicit-VR files need it to decode values; explicit-VR files carry their own VR.
 */

/** One line per element: "ggggeeee VR Keyword". */
const STANDARD = `
00020000 UL FileMetaInformationGroupLength
00020001 OB FileMetaInformationVersion
00020002 UI MediaStorageSOPClassUID
00020003 UI MediaStorageSOPInstanceUID
00020010 UI TransferSyntaxUID
00020012 UI ImplementationClassUID
00020013 SH ImplementationVersionName
00020016 AE SourceApplicationEntityTitle
00080005 CS SpecificCharacterSet
00080008 CS ImageType
00080012 DA InstanceCreationDate
00080013 TM InstanceCreationTime
00080014 UI InstanceCreatorUID
00080016 UI SOPClassUID
00080018 UI SOPInstanceUID
00080020 DA StudyDate
00080021 DA SeriesDate
00080022 DA AcquisitionDate
00080023 DA ContentDate
0008002A DT AcquisitionDateTime
00080030 TM StudyTime
00080031 TM SeriesTime
00080032 TM AcquisitionTime
00080033 TM ContentTime
00080050 SH AccessionNumber
00080060 CS Modality
00080064 CS ConversionType
00080068 CS PresentationIntentType
00080070 LO Manufacturer
00080080 LO InstitutionName
00080081 ST InstitutionAddress
00080090 PN ReferringPhysicianName
00080100 SH CodeValue
00080102 SH CodingSchemeDesignator
00080104 LO CodeMeaning
00080201 SH TimezoneOffsetFromUTC
00081010 SH StationName
00081030 LO StudyDescription
00081032 SQ ProcedureCodeSequence
0008103E LO SeriesDescription
00081040 LO InstitutionalDepartmentName
00081048 PN PhysiciansOfRecord
00081050 PN PerformingPhysicianName
00081060 PN NameOfPhysiciansReadingStudy
00081070 PN OperatorsName
00081080 LO AdmittingDiagnosesDescription
00081090 LO ManufacturerModelName
00081110 SQ ReferencedStudySequence
00081111 SQ ReferencedPerformedProcedureStepSequence
00081115 SQ ReferencedSeriesSequence
00081140 SQ ReferencedImageSequence
00081150 UI ReferencedSOPClassUID
00081155 UI ReferencedSOPInstanceUID
00082111 ST DerivationDescription
00082112 SQ SourceImageSequence
00083010 UI IrradiationEventUID
00089007 CS FrameType
00089205 CS PixelPresentation
00089206 CS VolumetricProperties
00089207 CS VolumeBasedCalculationTechnique
00089208 CS ComplexImageComponent
00089209 CS AcquisitionContrast
00089215 SQ DerivationCodeSequence
00100010 PN PatientName
00100020 LO PatientID
00100021 LO IssuerOfPatientID
00100030 DA PatientBirthDate
00100032 TM PatientBirthTime
00100040 CS PatientSex
00101000 LO OtherPatientIDs
00101001 PN OtherPatientNames
00101002 SQ OtherPatientIDsSequence
00101010 AS PatientAge
00101020 DS PatientSize
00101030 DS PatientWeight
00101040 LO PatientAddress
00102160 SH EthnicGroup
001021C0 US PregnancyStatus
00104000 LT PatientComments
00120062 CS PatientIdentityRemoved
00120063 LO DeidentificationMethod
00180010 LO ContrastBolusAgent
00180012 SQ ContrastBolusAgentSequence
00180015 CS BodyPartExamined
00180020 CS ScanningSequence
00180021 CS SequenceVariant
00180022 CS ScanOptions
00180023 CS MRAcquisitionType
00180024 SH SequenceName
00180025 CS AngioFlag
00180050 DS SliceThickness
00180060 DS KVP
00180080 DS RepetitionTime
00180081 DS EchoTime
00180082 DS InversionTime
00180083 DS NumberOfAverages
00180084 DS ImagingFrequency
00180085 SH ImagedNucleus
00180086 IS EchoNumbers
00180087 DS MagneticFieldStrength
00180088 DS SpacingBetweenSlices
00180089 IS NumberOfPhaseEncodingSteps
00180090 DS DataCollectionDiameter
00180091 IS EchoTrainLength
00180093 DS PercentSampling
00180094 DS PercentPhaseFieldOfView
00180095 DS PixelBandwidth
00181000 LO DeviceSerialNumber
00181020 LO SoftwareVersions
00181030 LO ProtocolName
00181040 LO ContrastBolusRoute
00181041 DS ContrastBolusVolume
00181042 TM ContrastBolusStartTime
00181048 CS ContrastBolusIngredient
00181060 DS TriggerTime
00181062 IS NominalInterval
00181088 IS HeartRate
00181090 IS CardiacNumberOfImages
00181100 DS ReconstructionDiameter
00181110 DS DistanceSourceToDetector
00181111 DS DistanceSourceToPatient
00181120 DS GantryDetectorTilt
00181130 DS TableHeight
00181140 CS RotationDirection
00181150 IS ExposureTime
00181151 IS XRayTubeCurrent
00181152 IS Exposure
00181160 SH FilterType
00181164 DS ImagerPixelSpacing
00181170 IS GeneratorPower
00181190 DS FocalSpots
00181210 SH ConvolutionKernel
00181250 SH ReceiveCoilName
00181251 SH TransmitCoilName
00181310 US AcquisitionMatrix
00181312 CS InPlanePhaseEncodingDirection
00181314 DS FlipAngle
00181315 CS VariableFlipAngleFlag
00181316 DS SAR
00181318 DS dBdt
00185100 CS PatientPosition
00189004 CS ContentQualification
00189005 SH PulseSequenceName
00189008 CS EchoPulseSequence
00189009 CS InversionRecovery
00189011 CS MultipleSpinEcho
00189042 SQ MRReceiveCoilSequence
00189069 FD ParallelReductionFactorInPlane
00189073 FD AcquisitionDuration
00189074 DT FrameAcquisitionDateTime
00189075 CS DiffusionDirectionality
00189076 SQ DiffusionGradientDirectionSequence
00189078 CS ParallelAcquisitionTechnique
00189082 FD EffectiveEchoTime
00189087 FD DiffusionBValue
00189089 FD DiffusionGradientOrientation
00189100 CS ResonantNucleus
00189112 SQ MRTimingAndRelatedParametersSequence
00189114 SQ MREchoSequence
00189117 SQ MRDiffusionSequence
00189125 SQ MRFOVGeometrySequence
00189151 DT FrameReferenceDateTime
00189226 SQ MRImageFrameTypeSequence
00189231 US MRAcquisitionPhaseEncodingStepsInPlane
00189305 FD RevolutionTime
00189306 FD SingleCollimationWidth
00189307 FD TotalCollimationWidth
00189309 FD TableSpeed
00189311 FD SpiralPitchFactor
00189345 FD CTDIvol
0020000D UI StudyInstanceUID
0020000E UI SeriesInstanceUID
00200010 SH StudyID
00200011 IS SeriesNumber
00200012 IS AcquisitionNumber
00200013 IS InstanceNumber
00200032 DS ImagePositionPatient
00200037 DS ImageOrientationPatient
00200052 UI FrameOfReferenceUID
00200060 CS Laterality
00200062 CS ImageLaterality
00200100 IS TemporalPositionIdentifier
00200105 IS NumberOfTemporalPositions
00201002 IS ImagesInAcquisition
00201040 LO PositionReferenceIndicator
00201041 DS SliceLocation
00204000 LT ImageComments
00209056 SH StackID
00209057 UL InStackPositionNumber
00209111 SQ FrameContentSequence
00209113 SQ PlanePositionSequence
00209116 SQ PlaneOrientationSequence
00209157 UL DimensionIndexValues
00280002 US SamplesPerPixel
00280004 CS PhotometricInterpretation
00280006 US PlanarConfiguration
00280008 IS NumberOfFrames
00280010 US Rows
00280011 US Columns
00280030 DS PixelSpacing
00280034 IS PixelAspectRatio
00280100 US BitsAllocated
00280101 US BitsStored
00280102 US HighBit
00280103 US PixelRepresentation
00280106 US SmallestImagePixelValue
00280107 US LargestImagePixelValue
00280120 US PixelPaddingValue
00280301 CS BurnedInAnnotation
00280302 CS RecognizableVisualFeatures
00281050 DS WindowCenter
00281051 DS WindowWidth
00281052 DS RescaleIntercept
00281053 DS RescaleSlope
00281054 LO RescaleType
00281055 LO WindowCenterWidthExplanation
00282110 CS LossyImageCompression
00282112 DS LossyImageCompressionRatio
00282114 CS LossyImageCompressionMethod
00289110 SQ PixelMeasuresSequence
00289132 SQ FrameVOILUTSequence
00289145 SQ PixelValueTransformationSequence
00321032 PN RequestingPhysician
00321060 LO RequestedProcedureDescription
00321064 SQ RequestedProcedureCodeSequence
00380010 LO AdmissionID
00400008 SQ ScheduledProtocolCodeSequence
00400009 SH ScheduledProcedureStepID
00400241 AE PerformedStationAETitle
00400243 SH PerformedLocation
00400244 DA PerformedProcedureStepStartDate
00400245 TM PerformedProcedureStepStartTime
00400253 SH PerformedProcedureStepID
00400254 LO PerformedProcedureStepDescription
00400275 SQ RequestAttributesSequence
00400280 ST CommentsOnThePerformedProcedureStep
00401001 SH RequestedProcedureID
00401002 LO ReasonForTheRequestedProcedure
0040A040 CS ValueType
0040A043 SQ ConceptNameCodeSequence
0040A160 UT TextValue
0040A491 CS CompletionFlag
0040A493 CS VerificationFlag
0040A730 SQ ContentSequence
52009229 SQ SharedFunctionalGroupsSequence
52009230 SQ PerFrameFunctionalGroupsSequence
7FE00010 OW PixelData
`;

/**
 * Private elements FIONA reads by fixed tag, keyed by private creator so implicit-VR files decode them:
 * "ggggxxee VR Name @ Creator" (xx is the creator's block).
 */
const PRIVATE = `
0019xx0A US NumberOfImagesInMosaic @ SIEMENS MR HEADER
0019xx0B DS SliceMeasurementDuration @ SIEMENS MR HEADER
0019xx0C IS B_value @ SIEMENS MR HEADER
0019xx0D CS DiffusionDirectionality @ SIEMENS MR HEADER
0019xx0E FD DiffusionGradientDirection @ SIEMENS MR HEADER
0019xx0F SH GradientMode @ SIEMENS MR HEADER
0019xx27 FD B_matrix @ SIEMENS MR HEADER
0051xx0A SH TimeOfAcquisition @ SIEMENS MR HEADER
0051xx0B SH AcquisitionMatrixText @ SIEMENS MR HEADER
0051xx0F LO CoilString @ SIEMENS MR HEADER
0051xx11 LO PATModeText @ SIEMENS MR HEADER
0029xx08 CS CSAImageHeaderType @ SIEMENS CSA HEADER
0029xx09 LO CSAImageHeaderVersion @ SIEMENS CSA HEADER
0029xx10 OB CSAImageHeaderInfo @ SIEMENS CSA HEADER
0029xx18 CS CSASeriesHeaderType @ SIEMENS CSA HEADER
0029xx19 LO CSASeriesHeaderVersion @ SIEMENS CSA HEADER
0029xx20 OB CSASeriesHeaderInfo @ SIEMENS CSA HEADER
0019xx5A FL AcquisitionDuration @ GEMS_ACQU_01
0019xx9C LO PulseSequenceName @ GEMS_ACQU_01
0019xxB3 DS UserData12 @ GEMS_ACQU_01
0019xxBB DS UserData20 @ GEMS_ACQU_01
0019xxBC DS UserData21 @ GEMS_ACQU_01
0019xxBD DS UserData22 @ GEMS_ACQU_01
0021xx4F SS LocationsInAcquisition @ GEMS_RELA_01
0043xx39 IS SlopInt6To9 @ GEMS_PARM_01
2001xx03 FL DiffusionBFactor @ Philips Imaging DD 001
2001xx04 CS DiffusionDirection @ Philips Imaging DD 001
2001xx18 SL NumberOfSlicesMR @ Philips Imaging DD 001
2001xx20 LO ScanningTechniqueDescriptionMR @ Philips Imaging DD 001
`;

export interface DictEntry {
  /** (group << 16 | element), unsigned. */
  tag: number;
  vr: string;
  keyword: string;
}

const byTag = new Map<number, DictEntry>();
const byKeyword = new Map<string, DictEntry>();
for (const line of STANDARD.split("\n")) {
  const [hex, vr, keyword] = line.split(" ");
  if (!hex || !vr || !keyword) continue;
  const entry = { tag: parseInt(hex, 16), vr, keyword };
  byTag.set(entry.tag, entry);
  byKeyword.set(keyword, entry);
}

/** Key: "<creator>|<group>|<low byte of element>". */
const privateVrs = new Map<string, string>();
for (const line of PRIVATE.split("\n")) {
  const match = /^([0-9A-F]{4})xx([0-9A-F]{2}) (\w\w) \S+ @ (.+)$/.exec(line);
  if (match) privateVrs.set(`${match[4]}|${parseInt(match[1]!, 16)}|${parseInt(match[2]!, 16)}`, match[3]!);
}

export function entryForTag(tag: number): DictEntry | undefined {
  return byTag.get(tag);
}

export function entryForKeyword(keyword: string): DictEntry | undefined {
  return byKeyword.get(keyword);
}

/** VR of a private element given its block's creator string, e.g. ("SIEMENS CSA HEADER", 0x0029, 0x1010). */
export function privateVr(creator: string, group: number, element: number): string | undefined {
  return privateVrs.get(`${creator}|${group}|${element & 0xff}`);
}

/** Every standard keyword (for tests and tooling). */
export function keywords(): string[] {
  return [...byKeyword.keys()];
}
